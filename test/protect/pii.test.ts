import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDetectors } from '../../src/protect/compile.ts';
import { isCardNumber, isIban, isSsn, luhn } from '../../src/protect/pii/validators.ts';

const pii = compileDetectors({
  secrets: false,
  pii: ['email', 'phone', 'payment-card', 'iban', 'us-ssn', 'ipv4', 'ipv6'],
  custom: [],
});

/** The PII findings of one text, as `type:text`, in order. */
const found = (text: string): string[] =>
  pii
    .scanText(text)
    .sort((a, b) => a.start - b.start)
    .map((f) => `${f.type}:${text.slice(f.start, f.end)}`);

describe('payment cards', () => {
  it('finds card numbers with a valid Luhn digit, plain or grouped, of each network', () => {
    for (const card of [
      '4111111111111111',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '5500 0000 0000 0004',
      '2223 0031 2200 3222',
      '3782 822463 10005',
      '6011 1111 1111 1117',
      '3530 1113 3330 0000',
      '4000056655665556',
    ]) {
      assert.deepEqual(found(`card: ${card}, exp 12/28`), [`payment-card:${card}`], card);
    }
  });

  it('leaves numbers alone whose Luhn digit is wrong or whose prefix no network issues', () => {
    // The first two fail Luhn; the last two pass it, but no network issues numbers starting 1 or 9.
    for (const number of [
      '4111111111111112',
      '4111 1111 1111 1121',
      '1234567812345670',
      '9999 9999 9999 9995',
    ]) {
      assert.deepEqual(found(`ref ${number} end`), [], number);
    }
  });

  it('checks Luhn itself on known vectors', () => {
    assert.equal(luhn('79927398713'), true);
    assert.equal(luhn('79927398710'), false);
    assert.equal(isCardNumber('4111111111111111'), true);
    assert.equal(isCardNumber('411111111111111'), false);
  });
});

describe('IBANs', () => {
  it('finds valid IBANs of several countries, electronic or in groups of four', () => {
    for (const iban of [
      'DE89370400440532013000',
      'DE89 3704 0044 0532 0130 00',
      'GB82WEST12345698765432',
      'GB82 WEST 1234 5698 7654 32',
      'FR1420041010050500013M02606',
      'NL91ABNA0417164300',
      'CH9300762011623852957',
      'NO9386011117947',
    ]) {
      assert.deepEqual(found(`pay to ${iban}.`), [`iban:${iban}`], iban);
      assert.equal(isIban(iban), true, iban);
    }
  });

  it('leaves IBAN-shaped strings with a wrong check, length or country alone', () => {
    for (const fake of [
      'DE89370400440532013001',
      'DE8937040044053201300',
      'GB82WEST1234569876543',
      'ZZ89370400440532013000',
    ]) {
      assert.deepEqual(found(`pay to ${fake}.`), [], fake);
      assert.equal(isIban(fake), false, fake);
    }
  });
});

describe('US social security numbers', () => {
  it('finds SSNs written with dashes or spaces', () => {
    assert.deepEqual(found('SSN: 123-45-6789'), ['us-ssn:123-45-6789']);
    assert.deepEqual(found('ssn 536 22 1234.'), ['us-ssn:536 22 1234']);
  });

  it('leaves numbers alone that merely look like SSNs: area 000, 666 or 9xx, group 00, serial 0000', () => {
    for (const fake of [
      '000-12-3456',
      '666-12-3456',
      '900-12-3456',
      '987-65-4321',
      '123-00-4567',
      '123-45-0000',
    ]) {
      assert.deepEqual(found(`id ${fake} x`), [], fake);
    }
    assert.equal(isSsn('123456789'), true);
    assert.equal(isSsn('666456789'), false);
  });

  it('does not take dates, versions, order numbers or a bare nine-digit run for an SSN', () => {
    assert.deepEqual(found('on 2026-11-02, v1.22.333, order 123-456-78, id 123456789'), []);
  });
});

describe('phone numbers', () => {
  it("finds numbers in several countries' formats", () => {
    for (const phone of [
      '+1 (415) 555-0132',
      '(415) 555-0132',
      '415-555-0132',
      '415.555.0132',
      '1-800-555-0199',
      '+14155550132',
      '+44 20 7946 0958',
      '020 7946 0958',
      '07700 900123',
      '+49 30 12345678',
      '030 12345678',
      '+33 1 23 45 67 89',
      '01 23 45 67 89',
      '+81 3-1234-5678',
      '03-1234-5678',
      '090-1234-5678',
      '+91 98765 43210',
      '0044 20 7946 0958',
    ]) {
      assert.deepEqual(found(`call ${phone} today`), [`phone:${phone}`], phone);
    }
  });

  it('leaves dates, times, amounts, versions and plain digit runs alone', () => {
    for (const text of [
      'on 2026-11-02 at 10:11',
      'total 1 234 567 890 EUR',
      'version 10.2.33.4567',
      'id 20261102101112',
      'range 100-200-300',
      'pi 3.14159265358',
      '12/25/2026',
    ]) {
      assert.deepEqual(found(text), [], text);
    }
  });
});

describe('e-mail addresses', () => {
  it('finds addresses with subdomains, plus tags and dots', () => {
    assert.deepEqual(found('write to jane.doe+mcp@mail.example.co.uk, or bob@example.com.'), [
      'email:jane.doe+mcp@mail.example.co.uk',
      'email:bob@example.com',
    ]);
  });

  it('leaves handles, decorators, URL credentials and domains without a top-level label alone', () => {
    assert.deepEqual(found('@mention @Component() user@localhost a@b.c'), []);
    assert.equal(
      found('https://deploy:s3cr3t@host.example.com/x').some((f) => f.startsWith('email:')),
      false,
    );
  });
});

describe('IP addresses', () => {
  it('finds IPv4 and IPv6 addresses', () => {
    assert.deepEqual(found('from 192.168.1.20 and 8.8.8.8'), ['ipv4:192.168.1.20', 'ipv4:8.8.8.8']);
    assert.deepEqual(found('peer 2001:db8::8a2e:370:7334 and fe80::1ff:fe23:4567:890a up'), [
      'ipv6:2001:db8::8a2e:370:7334',
      'ipv6:fe80::1ff:fe23:4567:890a',
    ]);
  });

  it('leaves octets over 255, version strings, times and code paths alone', () => {
    assert.deepEqual(found('256.1.1.1 1.2.3.4.5 v1.2.3.4 at 10:11:12, std::string, a::b'), []);
  });
});

describe('detectors the config adds', () => {
  it('finds a custom type by pattern and validator, near its keywords or anywhere', () => {
    const custom = compileDetectors({
      secrets: false,
      pii: [],
      custom: [
        { name: 'employee-id', pattern: String.raw`\bEMP-(\d{6})\b`, validator: 'none', kind: 'pii' },
        {
          name: 'ca-sin',
          pattern: String.raw`\b\d{3} \d{3} \d{3}\b`,
          validator: 'luhn',
          keywords: ['sin'],
          kind: 'pii',
        },
      ],
    });
    const text =
      'EMP-004211 has SIN 046 454 286; not 046 454 287, and 046 454 286 without the keyword far away'.padEnd(
        700,
        '.',
      );
    const types = custom
      .scanText(`${text} 046 454 286`)
      .map((f) => `${f.type}:${(`${text} 046 454 286`).slice(f.start, f.end)}`);
    assert.deepEqual(types.sort(), ['ca-sin:046 454 286', 'ca-sin:046 454 286', 'employee-id:004211']);
  });

  it('turns detectors off that the config leaves out', () => {
    assert.deepEqual(
      compileDetectors({ secrets: false, pii: ['email'], custom: [] })
        .scanText('bob@example.com 4111111111111111')
        .map((f) => f.type),
      ['email'],
    );
  });
});
