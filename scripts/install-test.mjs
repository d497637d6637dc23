#!/usr/bin/env node
/* eslint-disable no-console */
// The install test: proves the READMEs' installation sections word for word.
//
// 1. builds and packs the three publishable packages (`yarn pack`);
// 2. creates a separate Backstage app from the same release
//    (@backstage/create-app 0.9.2) in a temporary folder;
// 3. installs the tarballs into it and applies the code and config blocks of
//    the READMEs' "Install" sections, as a user would paste them;
// 4. type-checks the new app, starts its backend against the Bitbucket Cloud
//    emulator, and signs in over HTTP as the README's example catalog user,
//    and as a workspace member whom nobody wrote into the catalog (the org
//    module imported them).
//
// Run through scripts/test.sh (or: source scripts/env.sh; node scripts/install-test.mjs).
import { execFileSync, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BACKEND_PKG =
  '@bitbucket-signin/backstage-plugin-auth-backend-module-bitbucket-provider';
const FRONTEND_PKG = '@bitbucket-signin/backstage-plugin-auth-bitbucket-react';
const ORG_PKG =
  '@bitbucket-signin/backstage-plugin-catalog-backend-module-bitbucket-cloud-org';
/** A member of the README's workspace, in no catalog file. */
const MEMBER_UUID = '{7b3e9a21-4c5d-4e6f-8a9b-0c1d2e3f4a5b}';
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'bitbucket-install-test-'));
const children = [];

// The checks, in the order they run; each counts in the closing line. One
// that fails stops the test: the ones after it count as failed, not run.
const CHECKS = [
  "the READMEs' Install blocks are there",
  'build and pack the three packages',
  'create a new Backstage app from the same release',
  'install the packages as the READMEs say, from the tarballs',
  "apply the READMEs' code",
  'type-check the new app (proves the packages ship their types)',
  'start the emulator and the new app backend, then sign in over HTTP',
  'a workspace member nobody wrote into the catalog signed in',
  'the request log shows the callback with its code and state redacted',
];
let current = 0;
let passed = 0;
/** Ends the running check as passed and starts the next one, `msg`. */
const step = msg => {
  if (CHECKS[current + 1] !== msg) {
    throw new Error(`install-test: step "${msg}" is not the next of CHECKS`);
  }
  console.log(`ok: ${CHECKS[current]}`);
  passed += 1;
  current += 1;
  console.log(`\n[install-test] ${msg}`);
};
function run(cmd, args, opts = {}) {
  console.log(
    `$ ${cmd} ${args.join(' ')}${opts.cwd ? `   (in ${opts.cwd})` : ''}`,
  );
  execFileSync(cmd, args, { stdio: 'inherit', ...opts });
}
function fail(message) {
  throw new Error(message);
}

/** The version our yarn.lock resolves for `name` (its only entry). */
function lockedVersion(name) {
  const lock = readFileSync(join(ROOT, 'yarn.lock'), 'utf8');
  const versions = new Set(
    [
      ...lock.matchAll(
        new RegExp(`^"${name}@npm:[^\\n]*\\n  version: (\\S+)`, 'gm'),
      ),
    ].map(m => m[1]),
  );
  if (versions.size !== 1) {
    fail(
      `yarn.lock must hold one version of ${name}, it holds ${
        [...versions].join(', ') || 'none'
      }`,
    );
  }
  return [...versions][0];
}

/** The fenced code blocks of a markdown section, in order. */
function codeBlocks(markdown, heading) {
  const start = markdown.indexOf(heading);
  if (start < 0) fail(`README has no section "${heading}"`);
  const rest = markdown.slice(start + heading.length);
  const end = rest.search(/\n#{2,3} /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(m => ({
    lang: m[1],
    code: m[2],
  }));
}

async function freePort() {
  return new Promise((ok, no) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
    server.on('error', no);
  });
}

async function waitFor(url, child, what, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) fail(`${what} exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise(r => setTimeout(r, 500));
  }
  fail(`${what} not ready at ${url} within ${seconds} s`);
}

function startProcess(args, cwd, env, logName) {
  const log = join(work, logName);
  const out = [];
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', d => out.push(d));
  child.stderr.on('data', d => out.push(d));
  child.on('exit', () => writeFileSync(log, Buffer.concat(out)));
  child.dump = () => Buffer.concat(out).toString();
  children.push(child);
  return child;
}

async function main() {
  const moduleReadme = readFileSync(
    join(ROOT, 'plugins/auth-backend-module-bitbucket-provider/README.md'),
    'utf8',
  );
  const frontendReadme = readFileSync(
    join(ROOT, 'plugins/auth-bitbucket-react/README.md'),
    'utf8',
  );
  const orgReadme = readFileSync(
    join(ROOT, 'plugins/catalog-backend-module-bitbucket-cloud-org/README.md'),
    'utf8',
  );
  const orgInstall = codeBlocks(orgReadme, '## 2. Install');
  const orgAdd = orgInstall.find(b => b.lang === 'sh')?.code.trim();
  const orgBackendLines = orgInstall.find(b => b.lang === 'ts')?.code;
  const orgConfig = orgInstall.find(b => b.lang === 'yaml')?.code;
  const orgWorkspace = orgConfig?.match(/workspaces: \[(\S+)\]/)?.[1];
  if (!orgAdd || !orgBackendLines || !orgConfig || !orgWorkspace) {
    fail('the org module README lost a block of its Install section');
  }
  const install = codeBlocks(moduleReadme, '## 2. Install');
  const addCommand = install.find(b => b.lang === 'sh')?.code.trim();
  const [backendLines, redactionLines] = install
    .filter(b => b.lang === 'ts')
    .map(b => b.code);
  const appConfig = install.find(b => b.lang === 'yaml')?.code;
  const catalogUser = codeBlocks(moduleReadme, '## 4. Sign-in resolvers').find(
    b => b.lang === 'yaml',
  )?.code;
  const frontendAdd = codeBlocks(frontendReadme, '## Install')
    .find(b => b.lang === 'sh')
    ?.code.trim();
  const frontendCode = codeBlocks(
    frontendReadme,
    '### New frontend system',
  ).find(b => b.lang === 'tsx')?.code;
  if (
    !addCommand ||
    !backendLines ||
    !redactionLines ||
    !appConfig ||
    !catalogUser
  ) {
    fail('the module README lost a block of its Install or resolver sections');
  }
  if (!frontendAdd || !frontendCode) {
    fail('the frontend README lost a block of its Install section');
  }

  step('build and pack the three packages');
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  for (const dir of [
    'plugins/auth-backend-module-bitbucket-provider',
    'plugins/auth-bitbucket-react',
    'plugins/catalog-backend-module-bitbucket-cloud-org',
  ]) {
    run('yarn', ['build'], { cwd: join(ROOT, dir) });
    run('yarn', ['pack', '--out', join(tarballs, '%s.tgz')], {
      cwd: join(ROOT, dir),
    });
  }
  const tgz = name => join(tarballs, `${name.replace('/', '-')}.tgz`);

  step('create a new Backstage app from the same release');
  const app = join(work, 'app');
  const release = JSON.parse(
    readFileSync(join(ROOT, 'backstage.json'), 'utf8'),
  );
  run(
    'npx',
    ['-y', '@backstage/create-app@0.9.2', '--path', app, '--skip-install'],
    { env: { ...process.env, BACKSTAGE_APP_NAME: 'install-test-app' } },
  );
  const appRelease = JSON.parse(
    readFileSync(join(app, 'backstage.json'), 'utf8'),
  );
  if (appRelease.version !== release.version) {
    fail(
      `create-app made release ${appRelease.version}, ours is ${release.version}`,
    );
  }
  // This registry lacks some other-platform optional packages; the same
  // pins as ours (see ../shared/tools/fix-registry-gaps.js) let it resolve.
  const appPkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
  const ourPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  appPkg.resolutions = { ...ourPkg.resolutions, ...appPkg.resolutions };
  // The new app's @playwright/test range is not in our lockfile, so yarn
  // resolves it fresh, under the template's 3-day npmMinimalAgeGate. When
  // Playwright publishes a release, @playwright/test can clear the gate an
  // hour before the playwright-core it pins exactly, and for that hour every
  // resolution fails ("playwright-core@npm:1.65.2: All versions satisfying
  // "1.65.2" are quarantined", a CI run of 2026-12-04). Playwright releases
  // its packages in lockstep: pin @playwright/test to the playwright-core
  // our lockfile holds, which is older than the gate.
  appPkg.resolutions['@playwright/test'] = lockedVersion('playwright-core');
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify(appPkg, null, 2)}\n`,
  );
  // our lockfile as a seed: same release, so resolution reuses it
  writeFileSync(join(app, 'yarn.lock'), readFileSync(join(ROOT, 'yarn.lock')));

  step('install the packages as the READMEs say, from the tarballs');
  const asTarball = (command, pkg, where) => {
    const expected = `yarn --cwd packages/${where} add ${pkg}`;
    if (command !== expected)
      fail(`README command is "${command}", expected "${expected}"`);
    run(
      'yarn',
      ['--cwd', `packages/${where}`, 'add', `${pkg}@file:${tgz(pkg)}`],
      {
        cwd: app,
      },
    );
  };
  asTarball(addCommand, BACKEND_PKG, 'backend');
  asTarball(frontendAdd, FRONTEND_PKG, 'app');
  asTarball(orgAdd, ORG_PKG, 'backend');

  step("apply the READMEs' code");
  const backendIndex = join(app, 'packages/backend/src/index.ts');
  let index = readFileSync(backendIndex, 'utf8');
  const anchor = "backend.add(import('@backstage/plugin-auth-backend'));";
  if (!backendLines.includes(anchor) || !index.includes(anchor)) {
    fail(`the README's backend block and the new app must both have ${anchor}`);
  }
  const ours = backendLines
    .slice(backendLines.indexOf(anchor) + anchor.length)
    .trim();
  index = index.replace(anchor, `${anchor}\n${ours}`);
  // the request-log redaction: its imports on top, the rest after createBackend()
  const redactionImports = redactionLines
    .split('\n')
    .filter(l => l.startsWith('import '));
  const redactionCode = redactionLines
    .split('\n')
    .filter(l => !l.startsWith('import '))
    .join('\n')
    .trim();
  const created = 'const backend = createBackend();';
  if (
    !redactionCode.includes('redactOAuthRequestLog') ||
    !index.includes(created)
  ) {
    fail(`the README's redaction block and the new app's ${created} changed`);
  }
  index = `${redactionImports.join('\n')}\n${index.replace(
    created,
    `${created}\n${redactionCode}`,
  )}`;
  const catalogAnchor =
    "backend.add(import('@backstage/plugin-catalog-backend'));";
  if (
    !orgBackendLines.includes(catalogAnchor) ||
    !index.includes(catalogAnchor)
  ) {
    fail(
      `the org README's backend block and the new app must both have ${catalogAnchor}`,
    );
  }
  index = index.replace(
    catalogAnchor,
    `${catalogAnchor}\n${orgBackendLines
      .slice(orgBackendLines.indexOf(catalogAnchor) + catalogAnchor.length)
      .trim()}`,
  );
  writeFileSync(backendIndex, index);

  const appTsx = join(app, 'packages/app/src/App.tsx');
  let appCode = readFileSync(appTsx, 'utf8');
  const importLine = frontendCode
    .split('\n')
    .find(l => l.startsWith('import '));
  if (!importLine?.includes('bitbucketSignInModule'))
    fail('frontend README import changed');
  appCode = `${importLine}\n${appCode}`.replace(
    /features: \[([^\]]*)\]/,
    (_, list) =>
      `features: [${list.trim().replace(/,$/, '')}, bitbucketSignInModule]`,
  );
  writeFileSync(appTsx, appCode);

  step('type-check the new app (proves the packages ship their types)');
  run('yarn', ['tsc'], { cwd: app });

  step('start the emulator and the new app backend, then sign in over HTTP');
  const [backendPort, emulatorPort] = [await freePort(), await freePort()];
  const uuid = catalogUser.match(/bitbucket\.org\/user-id: '(\{[^}]+\})'/)?.[1];
  const accountId = catalogUser.match(
    /bitbucket\.org\/account-id: '([^']+)'/,
  )?.[1];
  const email = catalogUser.match(/email: (\S+)/)?.[1];
  const name = catalogUser.match(/name: (\S+)/)?.[1];
  if (!uuid || !accountId || !email || !name)
    fail('README example User changed shape');
  writeFileSync(
    join(work, 'seed.yaml'),
    [
      'consumers:',
      '  - key: install-test-consumer',
      '    secret: install-test-secret',
      `    callbackUrl: http://localhost:${backendPort}/api/auth/bitbucket`,
      '    permissions: [account, email, team]',
      `    workspaces: [${orgWorkspace}]`,
      'users:',
      `  - uuid: '${MEMBER_UUID}'`,
      "    accountId: '557058:install-test-member'",
      '    nickname: member',
      '    displayName: Workspace Member',
      '    emails: [{ email: member@example.com, primary: true, confirmed: true }]',
      `    workspaces: [{ slug: ${orgWorkspace}, role: member }]`,
      `  - uuid: '${uuid}'`,
      `    accountId: '${accountId}'`,
      '    nickname: readme-user',
      '    displayName: README User',
      `    emails: [{ email: ${email}, primary: true, confirmed: true }]`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(work, 'catalog-user.yaml'), catalogUser);
  writeFileSync(join(work, 'app-config.readme.yaml'), appConfig);
  writeFileSync(join(work, 'app-config.org-readme.yaml'), orgConfig);
  writeFileSync(
    join(work, 'app-config.test.yaml'),
    [
      'app:',
      `  baseUrl: http://localhost:${backendPort}`,
      'backend:',
      `  baseUrl: http://localhost:${backendPort}`,
      `  listen: { port: ${backendPort} }`,
      'auth:',
      '  providers:',
      '    bitbucket:',
      '      development:',
      `        baseUrl: http://localhost:${emulatorPort}`,
      `        apiBaseUrl: http://localhost:${emulatorPort}/2.0`,
      'catalog:',
      '  providers:',
      '    bitbucketCloudOrg:',
      '      production:',
      `        baseUrl: http://localhost:${emulatorPort}`,
      `        apiBaseUrl: http://localhost:${emulatorPort}/2.0`,
      '  locations:',
      '    - type: file',
      `      target: ${join(work, 'catalog-user.yaml')}`,
      '      rules: [{ allow: [User] }]',
      '',
    ].join('\n'),
  );
  const emulator = startProcess(
    [
      join(
        ROOT,
        'packages/bitbucket-cloud-emulator/bin/bitbucket-cloud-emulator',
      ),
      '--port',
      String(emulatorPort),
      '--seed',
      join(work, 'seed.yaml'),
    ],
    ROOT,
    {},
    'emulator.log',
  );
  const backend = startProcess(
    [
      join(app, '.yarn/releases/yarn-4.13.0.cjs'),
      'start',
      '--config',
      join(app, 'app-config.yaml'),
      '--config',
      join(work, 'app-config.readme.yaml'),
      '--config',
      join(work, 'app-config.org-readme.yaml'),
      '--config',
      join(work, 'app-config.test.yaml'),
    ],
    join(app, 'packages/backend'),
    {
      AUTH_BITBUCKET_CLIENT_ID: 'install-test-consumer',
      AUTH_BITBUCKET_CLIENT_SECRET: 'install-test-secret',
      BITBUCKET_ORG_CLIENT_ID: 'install-test-consumer',
      BITBUCKET_ORG_CLIENT_SECRET: 'install-test-secret',
      NODE_ENV: 'development',
    },
    'backend.log',
  );
  try {
    await waitFor(
      `http://127.0.0.1:${emulatorPort}/_emulator/health`,
      emulator,
      'emulator',
      20,
    );
    await waitFor(
      `http://localhost:${backendPort}/.backstage/health/v1/readiness`,
      backend,
      'backend',
      180,
    );
    // the catalog reads the User's file location shortly after start-up,
    // and the org provider imports the workspace 15 s after it: until then
    // the sign-in is refused with "no matching User"
    const signInOnce = async (who, ref) => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await signIn(backendPort, emulatorPort, who, ref);
          return;
        } catch (error) {
          if (
            !/no matching User/.test(error.message) ||
            Date.now() > deadline
          ) {
            throw error;
          }
          await new Promise(r => setTimeout(r, 2000));
        }
      }
    };
    await signInOnce(uuid, `user:default/${name}`);
    step('a workspace member nobody wrote into the catalog signed in');
    await signInOnce(
      MEMBER_UUID,
      `user:default/${MEMBER_UUID.slice(1, -1).toLowerCase()}`,
    );
    // the README's redaction: the callback is logged, its code is not
    step('the request log shows the callback with its code and state redacted');
    const logged = /handler\/frame\?code=REDACTED&state=REDACTED/;
    for (let i = 0; i < 20 && !logged.test(backend.dump()); i++) {
      await new Promise(r => setTimeout(r, 100));
    }
    if (!logged.test(backend.dump())) {
      fail("the backend's request log has no redacted callback line");
    }
    if (/handler\/frame\?code=(?!REDACTED)/.test(backend.dump())) {
      fail("the backend's request log holds an OAuth code");
    }
  } catch (error) {
    console.error(backend.dump().slice(-4000));
    throw error;
  }
}

/** /start → the emulator's consent (grant) → /handler/frame → identity. */
async function signIn(backendPort, emulatorPort, uuid, expectedRef) {
  const base = `http://localhost:${backendPort}/api/auth/bitbucket`;
  const start = await fetch(
    `${base}/start?env=development&flow=popup&origin=${encodeURIComponent(
      `http://localhost:${backendPort}`,
    )}`,
    { redirect: 'manual' },
  );
  const authorize = start.headers.get('location');
  const nonce = start.headers
    .getSetCookie()
    .find(
      c =>
        c.startsWith('bitbucket-nonce=') && !c.startsWith('bitbucket-nonce=;'),
    )
    ?.split(';')[0];
  if (start.status !== 302 || !authorize || !nonce) {
    fail(`/start answered ${start.status} without a redirect and nonce`);
  }
  if (
    !authorize.startsWith(
      `http://localhost:${emulatorPort}/site/oauth2/authorize?`,
    )
  ) {
    fail(`/start redirected to ${authorize}`);
  }
  const consent = await fetch(authorize);
  const html = await consent.text();
  const form = {};
  for (const m of html.matchAll(
    /<input type="hidden" name="([^"]+)" value="([^"]*)"/g,
  )) {
    form[m[1]] = m[2]
      .replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'")
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&amp;/g, '&');
  }
  const action =
    html.match(/<form[^>]*action="([^"]+)"/)?.[1] ?? '/site/oauth2/authorize';
  const granted = await fetch(new URL(action, authorize), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...form, account: uuid, decision: 'grant' }),
  });
  const callback = granted.headers.get('location');
  if (!callback?.startsWith(`${base}/handler/frame?`)) {
    fail(
      `consent answered ${granted.status} → ${callback}: ${(
        await granted.text()
      ).slice(0, 300)}`,
    );
  }
  const frame = await fetch(callback, { headers: { Cookie: nonce } });
  const text = await frame.text();
  const data = text.match(/decodeURIComponent\('(.+?)'\)/)?.[1];
  const message = data && JSON.parse(decodeURIComponent(data));
  const ref = message?.response?.backstageIdentity?.identity?.userEntityRef;
  if (ref !== expectedRef) {
    fail(
      `sign-in gave ${JSON.stringify(
        message?.error ?? message,
      )}, expected ${expectedRef}`,
    );
  }
  console.log(`[install-test] signed in as ${ref} on the new app: OK`);
}

let code = 0;
try {
  await main();
  console.log(`ok: ${CHECKS[current]}`);
  passed += 1;
} catch (error) {
  console.error(`[install-test] ${error.message}`);
  console.log(`FAILED: ${CHECKS[current]}`);
  for (const check of CHECKS.slice(current + 1)) {
    console.log(`FAILED: ${check} (not run: an earlier check failed)`);
  }
  code = 1;
} finally {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await new Promise(r => setTimeout(r, 1000));
  if (keep || code) console.log(`[install-test] work folder kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
console.log(`install-test: ${passed} passed, ${CHECKS.length - passed} failed`);
process.exit(code);
