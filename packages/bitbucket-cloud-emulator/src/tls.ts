import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';

/**
 * What an HTTPS emulator serves: its certificate and key, and the PEM of the
 * certificate authority that signed it, for the clients to trust (e.g.
 * `NODE_EXTRA_CA_CERTS=<file holding caCert>`).
 *
 * @public
 */
export interface EmulatorTls {
  /** PEM of the CA certificate: what a client must trust. */
  caCert: string;
  /** PEM of the server certificate, signed by the CA. */
  cert: string;
  /** PEM (PKCS #8) of the server certificate's private key. */
  key: string;
  /** The names and addresses the server certificate is valid for. */
  hosts: string[];
}

/**
 * The names the certificate covers by default: the loopback addresses the
 * emulator listens on, and Bitbucket Cloud's own hosts, which the benchmark
 * routes to the emulator for the upstream module (its URLs are hard-coded).
 */
export const DEFAULT_TLS_HOSTS = [
  'localhost',
  '127.0.0.1',
  '::1',
  'bitbucket.org',
  'api.bitbucket.org',
];

const ALGORITHM = {
  name: 'ECDSA',
  namedCurve: 'P-256',
  hash: 'SHA-256',
} as const;
const DAY_MS = 24 * 60 * 60 * 1000;

const isIp = (host: string) =>
  /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');

/**
 * Makes a certificate authority for one run and a server certificate it
 * signs for `hosts`. The CA's private key is dropped once the server
 * certificate is signed: trusting the CA trusts this one certificate and
 * nothing else anyone could sign later.
 *
 * ECDSA P-256 keys from Node's WebCrypto (a few milliseconds), X.509 built
 * by `@peculiar/x509`: no `openssl` binary, no files.
 *
 * @public
 */
export async function createEmulatorTls(
  options: { hosts?: string[]; validDays?: number } = {},
): Promise<EmulatorTls> {
  const hosts = options.hosts ?? DEFAULT_TLS_HOSTS;
  const validDays = options.validDays ?? 7;
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  // a little in the past: a client whose clock is slightly behind still accepts it
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + validDays * DAY_MS);
  const serial = () =>
    randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1');
  const runId = randomBytes(4).toString('hex');

  const caKeys = await crypto.subtle.generateKey(ALGORITHM, true, [
    'sign',
    'verify',
  ]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Bitbucket Cloud emulator CA ${runId}, O=bitbucket-cloud-emulator`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const serverKeys = await crypto.subtle.generateKey(ALGORITHM, true, [
    'sign',
    'verify',
  ]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hosts[0]}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map(host => ({
          type: isIp(host) ? ('ip' as const) : ('dns' as const),
          value: host,
        })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });

  const pkcs8 = await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey);
  return {
    caCert: ca.toString('pem'),
    cert: cert.toString('pem'),
    key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
    hosts,
  };
}
