import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseCliArgs, startFromCli } from './cli';
import { httpRequest } from './test-helpers';

describe('parseCliArgs', () => {
  it('defaults to port 7100 on 127.0.0.1 with the demo seed and current behaviour', () => {
    const { options, faults, help } = parseCliArgs([]);
    expect(help).toBe(false);
    expect(faults).toBeUndefined();
    expect(options).toMatchObject({
      port: 7100,
      host: '127.0.0.1',
      latencyMs: 0,
      randomLatencyMs: 0,
      legacyScopesField: false,
      rotateRefreshTokens: true,
    });
    expect(options.seed.consumers[0].key).toBe('backstage-demo');
  });

  it('reads every flag', () => {
    const { options, faults } = parseCliArgs([
      '--port=0',
      '--host',
      '127.0.0.2',
      '--latency',
      '25',
      '--random-latency',
      '10',
      '--legacy-scopes',
      '--no-rotate-refresh-tokens',
      '--access-token-ttl',
      '60',
      '--pagelen',
      '3',
      '--fault',
      '/2.0/user=503:0.25',
      '--fault',
      '/site/oauth2/access_token=429',
      '--hang',
      '/2.0/user/emails',
      '--hang',
      '/2.0/user',
    ]);
    expect(options).toMatchObject({
      port: 0,
      host: '127.0.0.2',
      latencyMs: 25,
      randomLatencyMs: 10,
      legacyScopesField: true,
      rotateRefreshTokens: false,
      accessTokenTtlSeconds: 60,
      pagelen: 3,
    });
    expect(faults).toEqual({
      endpoints: {
        '/2.0/user': { status: 503, rate: 0.25, hang: true },
        '/site/oauth2/access_token': { status: 429 },
        '/2.0/user/emails': { hang: true },
      },
    });
  });

  it('names the bad flag', () => {
    expect(() => parseCliArgs(['--fault', '/2.0/user'])).toThrow(
      '--fault must look like <path>=<status>[:<rate>]',
    );
    expect(() => parseCliArgs(['--latency', 'soon'])).toThrow(
      '--latency must be a number >= 0, got "soon"',
    );
    expect(() => parseCliArgs(['--hang', '2.0/user'])).toThrow(
      '--hang takes a pathname',
    );
    expect(() => parseCliArgs(['--verbose'])).toThrow(
      "Unknown option '--verbose'",
    );
  });
});

describe('startFromCli', () => {
  it('prints the banner and applies the faults', async () => {
    const config = parseCliArgs(['--port', '0', '--fault', '/2.0/user=503']);
    const { emulator, banner } = await startFromCli(config);
    try {
      expect(banner).toBe(
        `Bitbucket Cloud emulator listening on ${emulator.url} (consumers: backstage-demo; users: 5)`,
      );
      expect((await httpRequest(`${emulator.url}/2.0/user`)).status).toBe(503);
    } finally {
      await emulator.close();
    }
  });
});

describe('bin/bitbucket-cloud-emulator', () => {
  it('starts from TypeScript sources, prints one line, and exits cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [join(__dirname, '..', 'bin', 'bitbucket-cloud-emulator'), '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', chunk => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>(resolve =>
      child.on('exit', code => resolve(code)),
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', chunk => {
          stdout += chunk;
          if (stdout.includes('\n')) {
            resolve(stdout.split('\n')[0]);
          }
        });
        child.on('exit', code =>
          reject(new Error(`exited ${code}: ${stderr}`)),
        );
      });
      const match =
        /^Bitbucket Cloud emulator listening on (http:\/\/127\.0\.0\.1:\d+) \(consumers: backstage-demo; users: 5\)$/.exec(
          line,
        );
      expect(match).not.toBeNull();
      const health = await httpRequest(`${match![1]}/_emulator/health`);
      expect(health.json()).toEqual({ status: 'ok' });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
  }, 20_000);
});
