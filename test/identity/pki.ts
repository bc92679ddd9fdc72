import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Test PKI minted with the `openssl` CLI: a CA per trust domain, and leaf certificates (SVIDs). */
export interface Issued {
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

export function makeCa(dir: string, name: string): Issued & { dir: string } {
  const caDir = join(dir, name);
  mkdirSync(caDir, { recursive: true });
  writeFileSync(join(caDir, 'index.txt'), '');
  writeFileSync(join(caDir, 'serial'), '1000\n');
  writeFileSync(
    join(caDir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `dir = ${caDir}`,
      `database = ${caDir}/index.txt`,
      `new_certs_dir = ${caDir}`,
      `serial = ${caDir}/serial`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    caDir,
  );
  return { dir: caDir, cert: join(caDir, 'ca.pem'), key: join(caDir, 'ca.key') };
}

/** A leaf signed by `ca` with the given SANs (e.g. `URI:spiffe://td/w`, `IP:127.0.0.1`). */
export function makeLeaf(
  ca: Issued & { dir: string },
  name: string,
  sans: string[],
  validity: { start?: string; end?: string } = {},
): Issued {
  const d = ca.dir;
  writeFileSync(
    join(d, `${name}.ext`),
    [
      `subjectAltName = ${sans.join(',')}`,
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth,serverAuth',
      '',
    ].join('\n'),
  );
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ],
    d,
  );
  openssl(
    [
      'ca',
      '-batch',
      '-notext',
      '-config',
      'ca.cnf',
      '-cert',
      'ca.pem',
      '-keyfile',
      'ca.key',
      '-in',
      `${name}.csr`,
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
      ...(validity.start ? ['-startdate', validity.start] : []),
      ...(validity.end ? ['-enddate', validity.end] : ['-days', '1']),
    ],
    d,
  );
  return { cert: join(d, `${name}.pem`), key: join(d, `${name}.key`) };
}
