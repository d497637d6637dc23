import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EndpointFault, FaultConfig } from './faults';
import { demoSeedPath, EmulatorSeed, loadSeed } from './seed';
import {
  BitbucketCloudEmulator,
  EmulatorOptions,
  startEmulator,
} from './server';

/** Usage text of the `bitbucket-cloud-emulator` command. */
export const USAGE = `Usage: bitbucket-cloud-emulator [options]

Options:
  --port <n>                     port to listen on (default 7100; 0 = any free port)
  --host <address>               address to listen on (default 127.0.0.1)
  --seed <file>                  YAML seed file (default: the bundled demo seed)
  --latency <ms>                 fixed latency added to every request
  --random-latency <ms>          plus a uniform random 0..ms
  --legacy-scopes                token responses use "scopes" (before CHANGE-3052)
  --no-rotate-refresh-tokens     refresh tokens do not rotate (before CHANGE-3052)
  --access-token-ttl <seconds>   access token lifetime (default 7200)
  --pagelen <n>                  default page size (default 10)
  --https                        serve HTTPS with a certificate authority made for this run
  --ca-out <file>                where --https writes the CA's PEM, for NODE_EXTRA_CA_CERTS
                                 (default: bitbucket-cloud-emulator-ca.pem in the temp folder)
  --fault <path>=<status>[:<rate>]  answer <status> on <path> (repeatable)
  --hang <path>                  never answer requests to <path> (repeatable)
  -h, --help                     show this help
`;

/** What the command line asks for. */
export interface CliConfig {
  help: boolean;
  options: EmulatorOptions & { seed: EmulatorSeed; port: number };
  faults?: FaultConfig;
  /** With --https: the file the CA's PEM goes to. */
  caOut?: string;
}

/** Parses the command line; throws an Error naming the bad flag. */
export function parseCliArgs(argv: string[]): CliConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      seed: { type: 'string' },
      latency: { type: 'string' },
      'random-latency': { type: 'string' },
      'legacy-scopes': { type: 'boolean' },
      'no-rotate-refresh-tokens': { type: 'boolean' },
      'access-token-ttl': { type: 'string' },
      pagelen: { type: 'string' },
      https: { type: 'boolean' },
      'ca-out': { type: 'string' },
      fault: { type: 'string', multiple: true },
      hang: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });

  const number = (flag: string, value: string | undefined) => {
    if (value === undefined) {
      return undefined;
    }
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new Error(`--${flag} must be a number >= 0, got "${value}"`);
    }
    return n;
  };

  const endpoints: Record<string, EndpointFault> = {};
  for (const spec of values.fault ?? []) {
    const match = /^(\/[^=\s]*)=(\d{3})(?::([0-9.]+))?$/.exec(spec);
    if (!match) {
      throw new Error(
        `--fault must look like <path>=<status>[:<rate>], e.g. /2.0/user=503:0.5, got "${spec}"`,
      );
    }
    const fault: EndpointFault = {
      ...endpoints[match[1]],
      status: Number(match[2]),
    };
    if (match[3] !== undefined) {
      fault.rate = Number(match[3]);
    }
    endpoints[match[1]] = fault;
  }
  for (const path of values.hang ?? []) {
    if (!path.startsWith('/')) {
      throw new Error(
        `--hang takes a pathname such as /2.0/user, got "${path}"`,
      );
    }
    endpoints[path] = { ...endpoints[path], hang: true };
  }

  const options: CliConfig['options'] = {
    port: number('port', values.port) ?? 7100,
    host: values.host ?? '127.0.0.1',
    seed: loadSeed(values.seed ?? demoSeedPath),
    latencyMs: number('latency', values.latency) ?? 0,
    randomLatencyMs: number('random-latency', values['random-latency']) ?? 0,
    legacyScopesField: values['legacy-scopes'] ?? false,
    rotateRefreshTokens: !values['no-rotate-refresh-tokens'],
  };
  const ttl = number('access-token-ttl', values['access-token-ttl']);
  if (ttl !== undefined) {
    options.accessTokenTtlSeconds = ttl;
  }
  const pagelen = number('pagelen', values.pagelen);
  if (pagelen !== undefined) {
    options.pagelen = pagelen;
  }
  if (values['ca-out'] !== undefined && !values.https) {
    throw new Error('--ca-out needs --https');
  }
  if (values.https) {
    options.tls = true;
  }
  return {
    help: values.help ?? false,
    options,
    faults: Object.keys(endpoints).length > 0 ? { endpoints } : undefined,
    caOut: values.https
      ? values['ca-out'] ?? join(tmpdir(), 'bitbucket-cloud-emulator-ca.pem')
      : undefined,
  };
}

/** Starts an emulator from a command line and returns it with its start-up line. */
export async function startFromCli(
  config: CliConfig,
): Promise<{ emulator: BitbucketCloudEmulator; banner: string }> {
  const emulator = await startEmulator(config.options);
  if (config.faults) {
    emulator.setFaults(config.faults);
  }
  const { seed } = config.options;
  let banner = `Bitbucket Cloud emulator listening on ${
    emulator.url
  } (consumers: ${seed.consumers.map(c => c.key).join(', ')}; users: ${
    seed.users.length
  })`;
  if (config.caOut && emulator.caCert) {
    writeFileSync(config.caOut, emulator.caCert);
    banner += `\nHTTPS with a certificate authority made for this run; trust it with NODE_EXTRA_CA_CERTS=${config.caOut}`;
  }
  return { emulator, banner };
}

/**
 * Entry point of the `bitbucket-cloud-emulator` command: runs until SIGINT or
 * SIGTERM, then closes cleanly.
 */
export async function main(argv: string[]): Promise<void> {
  let config: CliConfig;
  try {
    config = parseCliArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (config.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { emulator, banner } = await startFromCli(config);
  process.stdout.write(`${banner}\n`);

  const stop = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
