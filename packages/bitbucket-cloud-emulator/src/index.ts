/**
 * A local emulator of the Bitbucket Cloud OAuth 2.0 and REST endpoints used
 * for sign-in, for tests and demos that must not reach bitbucket.org.
 *
 * @packageDocumentation
 */

export { startEmulator } from './server';
export type { BitbucketCloudEmulator, EmulatorOptions } from './server';
export { demoSeedPath, loadSeed } from './seed';
export type {
  EmulatorSeed,
  SeedConsumer,
  SeedEmail,
  SeedUser,
  SeedWorkspace,
} from './seed';
export type { EndpointFault, FaultConfig } from './faults';
export type { EmulatorCall } from './record';
export { createEmulatorTls, DEFAULT_TLS_HOSTS } from './tls';
export type { EmulatorTls } from './tls';
