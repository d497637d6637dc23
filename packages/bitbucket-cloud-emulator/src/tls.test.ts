import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCliArgs, startFromCli } from './cli';
import { BitbucketCloudEmulator, startEmulator } from './server';
import { DEMO_USERS, getApi, httpRequest, signIn } from './test-helpers';
import { createEmulatorTls, DEFAULT_TLS_HOSTS } from './tls';

/** Runs `node -e <script>` with an environment of its own; resolves with its stdout. */
function node(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string }> {
  return new Promise(resolve => {
    execFile(
      process.execPath,
      ['-e', script],
      // the child's own environment only: no NODE_EXTRA_CA_CERTS inherited
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 },
      (error, stdout) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

describe('createEmulatorTls', () => {
  it('makes a CA and a server certificate it signed, for loopback and Bitbucket hosts', async () => {
    const tls = await createEmulatorTls();
    const ca = new X509Certificate(tls.caCert);
    const cert = new X509Certificate(tls.cert);

    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/^CN=Bitbucket Cloud emulator CA [0-9a-f]{8}\n/);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(cert.subjectAltName).toBe(
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:bitbucket.org, DNS:api.bitbucket.org',
    );
    expect(tls.hosts).toEqual(DEFAULT_TLS_HOSTS);
    for (const host of ['localhost', 'bitbucket.org', 'api.bitbucket.org']) {
      expect(cert.checkHost(host)).toBe(host);
    }
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('evil.example')).toBeUndefined();
    // valid now, for a week
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    expect(from).toBeLessThan(Date.now());
    expect(Math.round((to - Date.now()) / 86_400_000)).toBe(7);
    // a private key for the server certificate, none for the CA
    expect(tls.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(Object.keys(tls).sort()).toEqual(['caCert', 'cert', 'hosts', 'key']);
  });

  it('makes a new CA each time', async () => {
    const [a, b] = await Promise.all([
      createEmulatorTls(),
      createEmulatorTls(),
    ]);
    expect(a.caCert).not.toBe(b.caCert);
    expect(
      new X509Certificate(a.cert).checkIssued(new X509Certificate(b.caCert)),
    ).toBe(false);
  });

  it('covers the hosts it is given', async () => {
    const tls = await createEmulatorTls({ hosts: ['bb.test', '10.0.0.7'] });
    expect(new X509Certificate(tls.cert).subjectAltName).toBe(
      'DNS:bb.test, IP Address:10.0.0.7',
    );
  });
});

describe('an HTTPS emulator', () => {
  let emulator: BitbucketCloudEmulator;
  const dir = mkdtempSync(join(tmpdir(), 'emulator-tls-'));
  beforeAll(async () => {
    emulator = await startEmulator({ tls: true });
  });
  afterAll(async () => {
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS URLs and exposes the CA to trust', () => {
    expect(emulator.url).toBe(`https://127.0.0.1:${emulator.port}`);
    expect(emulator.apiBaseUrl).toBe(`${emulator.url}/2.0`);
    expect(emulator.caCert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
  });

  it('runs the whole OAuth flow and the REST API over TLS', async () => {
    const tokens = await signIn(emulator, DEMO_USERS.jane);
    const user = await getApi(emulator, '/2.0/user', tokens.access_token);
    expect(user.status).toBe(200);
    expect(user.json().uuid).toBe(DEMO_USERS.jane);
    // links in answers carry the scheme the client used
    const emails = await getApi(
      emulator,
      '/2.0/user/emails?pagelen=1',
      tokens.access_token,
    );
    expect(emails.json().next).toMatch(
      new RegExp(
        `^https://127\\.0\\.0\\.1:${emulator.port}/2\\.0/user/emails\\?`,
      ),
    );
    const calls = emulator
      .calls()
      .map(c => `${c.method} ${c.path} ${c.status}`);
    expect(calls).toEqual([
      'GET /site/oauth2/authorize 200',
      'POST /site/oauth2/authorize 302',
      'POST /site/oauth2/access_token 200',
      'GET /2.0/user 200',
      'GET /2.0/user/emails 200',
    ]);
  });

  it('is refused by a client that does not trust its CA', async () => {
    await expect(
      httpRequest(`${emulator.url}/_emulator/health`),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const other = await createEmulatorTls();
    await expect(
      httpRequest(`${emulator.url}/_emulator/health`, { ca: other.caCert }),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('is trusted by a Node process through NODE_EXTRA_CA_CERTS (fetch and https)', async () => {
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, emulator.caCert!);
    const script = `
      const url = ${JSON.stringify(`${emulator.url}/_emulator/health`)};
      fetch(url).then(r => r.status, e => e.cause?.code ?? e.message)
        .then(viaFetch => require('node:https').get(url, r => {
          console.log(viaFetch + ' ' + r.statusCode); r.resume();
        }).on('error', e => console.log(viaFetch + ' ' + e.code)));`;
    const trusted = await node(script, { NODE_EXTRA_CA_CERTS: caFile });
    expect(trusted.stdout.trim()).toBe('200 200');
    const untrusted = await node(script, {});
    expect(untrusted.stdout.trim()).toBe(
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
  });

  it('answers for bitbucket.org and api.bitbucket.org by SNI', async () => {
    const script = `
      const tls = require('node:tls');
      const s = tls.connect({ host: '127.0.0.1', port: ${emulator.port},
        servername: 'api.bitbucket.org', ca: process.env.CA }, () => {
        console.log(s.authorized + ' ' + s.getProtocol()); s.end();
      });
      s.on('error', e => console.log(e.code));`;
    const result = await node(script, { CA: emulator.caCert! });
    expect(result.stdout.trim()).toBe('true TLSv1.3');
  });
});

describe('bitbucket-cloud-emulator --https', () => {
  it('writes the CA for NODE_EXTRA_CA_CERTS and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'emulator-cli-tls-'));
    const caOut = join(dir, 'ca.pem');
    try {
      const config = parseCliArgs([
        '--port',
        '0',
        '--https',
        '--ca-out',
        caOut,
      ]);
      expect(config.options.tls).toBe(true);
      const { emulator, banner } = await startFromCli(config);
      try {
        expect(banner.split('\n')).toEqual([
          expect.stringMatching(
            /^Bitbucket Cloud emulator listening on https:\/\/127\.0\.0\.1:\d+ /,
          ),
          `HTTPS with a certificate authority made for this run; trust it with NODE_EXTRA_CA_CERTS=${caOut}`,
        ]);
        expect(readFileSync(caOut, 'utf8')).toBe(emulator.caCert);
        const health = await httpRequest(`${emulator.url}/_emulator/health`, {
          ca: readFileSync(caOut, 'utf8'),
        });
        expect(health.status).toBe(200);
      } finally {
        await emulator.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaults the CA file to the temp folder, and refuses --ca-out without --https', () => {
    expect(parseCliArgs(['--https']).caOut).toBe(
      join(tmpdir(), 'bitbucket-cloud-emulator-ca.pem'),
    );
    expect(parseCliArgs([]).caOut).toBeUndefined();
    expect(() => parseCliArgs(['--ca-out', '/tmp/x.pem'])).toThrow(
      '--ca-out needs --https',
    );
  });
});
