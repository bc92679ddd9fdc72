import type { Config } from '../config/schema.ts';

/** What `config check` warns of in the sandbox sections: where an upstream could move laterally. */
export function sandboxWarnings(config: Config): string[] {
  const warnings: string[] = [];
  for (const [name, up] of Object.entries(config.upstreams)) {
    if (up.transport !== 'stdio') continue;
    if (up.sandbox === 'off') {
      warnings.push(
        `upstreams.${name}.sandbox: off — lateral-movement risk: it runs with the gateway user's files, processes and network`,
      );
    } else if (up.sandbox?.network === 'host') {
      warnings.push(
        `upstreams.${name}.sandbox.network: host — lateral-movement risk: it reaches every service the gateway host can (databases on loopback, cloud metadata, the internal network)`,
      );
    }
  }
  return warnings;
}
