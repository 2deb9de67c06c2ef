// scripts/preflight.sh on fake machines: a PATH of stubs (id, sudo, apt-get, service, python3,
// the binaries it looks for) and PREFLIGHT_ROOT_DIR for the absolute paths it checks
// (/usr/bin/chromium, /usr/lib/postgresql/*/bin/initdb, the CA bundle, /usr/sbin/policy-rc.d).
// The apt-get stub logs its calls and "installs" a package by creating its binary.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const preflight = join(root, 'scripts/preflight.sh');
const machines: string[] = [];
after(() => {
  for (const dir of machines) rmSync(dir, { recursive: true, force: true });
});

type Need = 'chromium' | 'redis-server' | 'initdb' | 'python3-venv' | 'java' | 'mvn' | 'bc' | 'ca-certificates' | 'curl' | 'prometheus';
const everything: Need[] = ['chromium', 'redis-server', 'initdb', 'python3-venv', 'java', 'mvn', 'bc', 'ca-certificates', 'curl', 'prometheus'];

/** The apt list .ci/run has always installed, in its order. */
const ciPackages = 'chromium redis-server postgresql python3 python3-venv python3-pip openjdk-17-jdk-headless maven bc ca-certificates curl prometheus';

interface Machine {
  dir: string;
  bin: string;
  sysroot: string;
  log: string;
  run: (...suites: string[]) => { status: number | null; stdout: string; stderr: string; ms: number };
  calls: () => string[];
}

function script(path: string, body: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `#!/bin/bash\n${body}\n`);
  chmodSync(path, 0o755);
}

/** Where a need's binary lives on the fake machine. */
function installPath(m: { bin: string; sysroot: string }, need: Need): string {
  switch (need) {
    case 'chromium':
      return join(m.sysroot, 'usr/bin/chromium');
    case 'initdb':
      return join(m.sysroot, 'usr/lib/postgresql/15/bin/initdb');
    case 'ca-certificates':
      return join(m.sysroot, 'etc/ssl/certs/ca-certificates.crt');
    case 'python3-venv':
      return join(m.bin, 'python3');
    default:
      return join(m.bin, need);
  }
}

function give(m: { bin: string; sysroot: string }, need: Need): void {
  script(installPath(m, need), 'exit 0');
  if (need === 'prometheus') script(join(m.bin, 'promtool'), 'exit 0'); // the same package
}

/**
 * A fake machine: `uid` as `id -u` reports it, `sudo` whether passwordless sudo works, `have` the
 * needs already installed. `aptInstalls` false makes apt-get succeed without installing anything.
 */
function machine(options: { uid: number; sudo?: boolean; have?: Need[]; aptInstalls?: boolean }): Machine {
  const dir = mkdtempSync(join(tmpdir(), 'preflight-'));
  machines.push(dir);
  const m = { bin: join(dir, 'bin'), sysroot: join(dir, 'root') };
  const log = join(dir, 'calls.log');
  mkdirSync(m.bin, { recursive: true });
  mkdirSync(m.sysroot, { recursive: true });
  writeFileSync(log, '');
  for (const tool of ['chmod', 'rm', 'tee']) symlinkSync(`/usr/bin/${tool}`, join(m.bin, tool));
  script(join(m.bin, 'id'), `[ "$1" = -u ] && echo ${options.uid}`);
  script(
    join(m.bin, 'sudo'),
    options.sudo
      ? `echo "sudo $*" >>"${log}"\n[ "$1" = -n ] && shift\n[ "$1" = true ] && exit 0\nexec "$@"`
      : 'echo "sudo: a password is required" >&2\nexit 1',
  );
  script(join(m.bin, 'service'), `echo "service $*" >>"${log}"`);
  const installs = (options.aptInstalls ?? true)
    ? Object.entries({
        chromium: 'chromium',
        'redis-server': 'redis-server',
        postgresql: 'initdb',
        'python3-venv': 'python3-venv',
        'openjdk-17-jdk-headless': 'java',
        maven: 'mvn',
        bc: 'bc',
        'ca-certificates': 'ca-certificates',
        curl: 'curl',
        prometheus: 'prometheus',
      } as Record<string, Need>)
        .map(([pkg, need]) => {
          const paths = need === 'prometheus' ? [installPath(m, need), join(m.bin, 'promtool')] : [installPath(m, need)];
          const create = paths.map((path) => `/usr/bin/mkdir -p "${dirname(path)}"; printf '#!/bin/bash\\nexit 0\\n' >"${path}"; /usr/bin/chmod +x "${path}"`);
          return `    ${pkg}) ${create.join('; ')} ;;`;
        })
        .join('\n')
    : '';
  script(
    join(m.bin, 'apt-get'),
    [
      `policy=no; [ -x "${m.sysroot}/usr/sbin/policy-rc.d" ] && policy=yes`,
      `echo "apt-get $* (policy-rc.d: $policy, DEBIAN_FRONTEND=$DEBIAN_FRONTEND)" >>"${log}"`,
      '[ "$1" = install ] || exit 0',
      'for pkg in "$@"; do',
      '  case "$pkg" in',
      installs,
      '    *) ;;',
      '  esac',
      'done',
    ].join('\n'),
  );
  mkdirSync(join(m.sysroot, 'usr/sbin'), { recursive: true });
  for (const need of options.have ?? []) give(m, need);
  return {
    dir,
    ...m,
    log,
    run: (...suites) => {
      const started = Date.now();
      const run = spawnSync('/bin/bash', [preflight, ...suites], {
        encoding: 'utf8',
        env: { PATH: m.bin, PREFLIGHT_ROOT_DIR: m.sysroot },
      });
      return { status: run.status, stdout: run.stdout, stderr: run.stderr, ms: Date.now() - started };
    },
    calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

test('nothing missing: no output, no install, as a user and as root', () => {
  for (const uid of [1000, 0]) {
    const m = machine({ uid, have: everything });
    const { status, stdout, stderr } = m.run();
    assert.deepEqual({ status, stdout, stderr }, { status: 0, stdout: '', stderr: '' }, `uid ${uid}`);
    assert.deepEqual(m.calls(), []);
    assert.equal(existsSync(join(m.sysroot, 'usr/sbin/policy-rc.d')), false);
  }
});

test('a user without sudo on a bare machine gets one line with the exact install command, at once', () => {
  const m = machine({ uid: 1000 });
  const result = m.run();
  assert.equal(result.status, 1);
  assert.equal(result.stdout, '');
  assert.equal(
    result.stderr,
    'npm test: missing chromium, redis-server, initdb (PostgreSQL), python3 -m venv, java, mvn, bc, CA certificates, curl, prometheus: ' +
      `run as root: apt-get update && apt-get install -y --no-install-recommends ${ciPackages}\n`,
  );
  assert.ok(result.ms < 3000, `took ${result.ms} ms`);
  assert.deepEqual(m.calls(), [], 'no sudo attempt is logged, nothing installed');
});

test('only the missing pieces are named: Python without venv, Chromium found through CHROMIUM_PATH', () => {
  const m = machine({ uid: 1000, have: ['redis-server', 'initdb', 'java', 'mvn', 'bc', 'ca-certificates', 'curl', 'prometheus'] });
  script(join(m.bin, 'python3'), 'exit 1'); // Debian's python3 without python3-venv: no ensurepip
  script(join(m.dir, 'opt/chrome'), 'exit 0');
  const run = spawnSync('/bin/bash', [preflight], {
    encoding: 'utf8',
    env: { PATH: m.bin, PREFLIGHT_ROOT_DIR: m.sysroot, CHROMIUM_PATH: join(m.dir, 'opt/chrome') },
  });
  assert.equal(run.status, 1);
  assert.equal(
    run.stderr,
    'npm test: missing python3 -m venv: run as root: apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip\n',
  );
});

/** What each suite of tests/suites.json needs, as the missing-list of a bare machine shows it. */
const suiteNeeds: Record<string, string> = {
  'site-unit': 'chromium',
  'site-build': '',
  'site-browser': 'chromium bc',
  'lab-lint': 'python3 python3-venv python3-pip ca-certificates',
  lab: 'redis-server python3 python3-venv python3-pip openjdk-17-jdk-headless ca-certificates prometheus',
  e2e: 'redis-server postgresql python3 python3-venv python3-pip openjdk-17-jdk-headless maven ca-certificates curl prometheus',
};

test('every suite of tests/suites.json has its needs in preflight', () => {
  const suites = (JSON.parse(readFileSync(join(root, 'tests/suites.json'), 'utf8')) as { name: string }[]).map((s) => s.name);
  assert.deepEqual(Object.keys(suiteNeeds).sort(), [...suites].sort());
});

test('npm test -- <suite> checks only what that suite needs', () => {
  for (const [suite, packages] of Object.entries(suiteNeeds)) {
    const result = machine({ uid: 1000 }).run(suite);
    if (packages === '') {
      assert.deepEqual([result.status, result.stderr], [0, ''], suite);
    } else {
      assert.equal(result.status, 1, suite);
      assert.match(result.stderr, new RegExp(`--no-install-recommends ${packages}\\n$`), suite);
    }
  }
  const two = machine({ uid: 1000 }).run('site-browser', 'site-unit');
  assert.match(two.stderr, /^npm test: missing chromium, bc: .*--no-install-recommends chromium bc\n$/);
  assert.deepEqual(machine({ uid: 1000 }).run('no-such-suite').status, 0, 'the test runner names an unknown suite');
});

test('as root it installs the missing packages behind policy-rc.d, removes it and stops the new services', () => {
  const m = machine({ uid: 0, have: ['chromium', 'python3-venv', 'java', 'mvn', 'bc', 'ca-certificates', 'curl'] });
  const result = m.run();
  assert.equal(result.stderr, '');
  assert.equal(result.status, 0);
  assert.equal(result.stdout, 'npm test: installing the missing system packages: redis-server postgresql prometheus\n');
  assert.deepEqual(m.calls(), [
    'apt-get update -q (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
    'apt-get install -y -q --no-install-recommends --no-upgrade redis-server postgresql prometheus (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
    'service redis-server stop',
    'service postgresql stop',
    'service prometheus stop',
  ]);
  assert.equal(existsSync(join(m.sysroot, 'usr/sbin/policy-rc.d')), false, 'the policy-rc.d it created is removed');
  const again = m.run();
  assert.deepEqual([again.status, again.stdout, again.stderr], [0, '', ''], 'a second run finds nothing missing');
});

test('a policy-rc.d that was there before is kept, and only the services of new packages are stopped', () => {
  const m = machine({ uid: 0, have: everything.filter((n) => n !== 'bc') });
  script(join(m.sysroot, 'usr/sbin/policy-rc.d'), 'exit 0');
  assert.equal(m.run('site-browser').status, 0);
  assert.deepEqual(m.calls(), [
    'apt-get update -q (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
    'apt-get install -y -q --no-install-recommends --no-upgrade bc (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
  ]);
  assert.equal(readFileSync(join(m.sysroot, 'usr/sbin/policy-rc.d'), 'utf8'), '#!/bin/bash\nexit 0\n');
});

test('a user with passwordless sudo installs through sudo', () => {
  const m = machine({ uid: 1000, sudo: true, have: everything.filter((n) => n !== 'curl') });
  const result = m.run();
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(
    m.calls().filter((c) => !c.startsWith('sudo -n true')),
    [
      `sudo -n tee ${m.sysroot}/usr/sbin/policy-rc.d`,
      `sudo -n chmod +x ${m.sysroot}/usr/sbin/policy-rc.d`,
      'sudo -n apt-get update -q',
      'apt-get update -q (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
      'sudo -n apt-get install -y -q --no-install-recommends --no-upgrade curl',
      'apt-get install -y -q --no-install-recommends --no-upgrade curl (policy-rc.d: yes, DEBIAN_FRONTEND=noninteractive)',
      `sudo -n rm -f ${m.sysroot}/usr/sbin/policy-rc.d`,
    ],
  );
  assert.ok(existsSync(join(m.bin, 'curl')));
});

test('an install that leaves something missing fails naming it', () => {
  const m = machine({ uid: 0, aptInstalls: false, have: everything.filter((n) => n !== 'redis-server') });
  const result = m.run('lab');
  assert.equal(result.status, 1);
  assert.equal(result.stderr, 'npm test: still missing after apt-get install: redis-server\n');
  assert.equal(existsSync(join(m.sysroot, 'usr/sbin/policy-rc.d')), false);
});
