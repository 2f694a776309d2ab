import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, projectNameFrom } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { z } from 'zod';
import { checkEndpoints } from '../../src/config/endpoints.js';
import { sampleTree, writeSampleTree } from '../../src/config/init.js';
import { loadProviderDefinition } from '../../src/providers/registry.js';
import type { ProviderDefinition } from '../../src/providers/types.js';

const VALID = `
provider:
  name: local
images:
  base:
    base-image: debian-12
  app:
    base-image: base
  db:
    base-image: base
deployments:
  staging:
    app: { servers: 2 }
    db: { servers: 1, cold-only: true }
`;

let project: TempProject | undefined;
afterEach(() => project?.remove());

async function problemsOf(yaml: string, setup?: (p: TempProject) => void, env: NodeJS.ProcessEnv = {}) {
  project = tempProject();
  project.writeConfig(yaml);
  setup?.(project);
  try {
    await loadConfig({ cwd: project.dir, env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.problems;
  }
  assert.fail('the config was accepted');
}

describe('config', () => {
  it('loads a valid config with defaults', async () => {
    project = tempProject('provisional-My App-');
    project.writeConfig(VALID);
    project.write('config/provisional/base/scripts/10-a.sh', '#!/bin/sh\n', 0o755);
    const config = await loadConfig({ cwd: project.dir, env: {} });
    assert.equal(config.provider.name, 'local');
    assert.deepEqual(config.graph.order(), ['base', 'app', 'db']);
    assert.equal(config.images.app!['build-timeout'], 3600);
    assert.equal(config.deployments.staging!.db!['cold-only'], true);
    assert.equal(config.deployments.staging!.app!['cold-only'], false);
    assert.match(config.project, /^provisional-my-app-/);
    assert.equal(config.projectDir, project.dir);
  });

  it('finds the config from a subdirectory', async () => {
    project = tempProject();
    project.writeConfig(VALID);
    project.write('src/x.txt', '');
    const config = await loadConfig({ cwd: `${project.dir}/src`, env: {} });
    assert.equal(config.projectDir, project.dir);
  });

  it('reports malformed YAML with its line', async () => {
    const problems = await problemsOf('images:\n  base:\n    base-image: [debian-12\n');
    assert.equal(problems.length >= 1, true);
    assert.match(problems[0]!.message, /invalid YAML/);
    assert.ok(problems[0]!.line);
    assert.match(problems[0]!.file, /config\/provisional\/config\.yml$/);
  });

  it('reports unknown keys with a suggestion and the line', async () => {
    const problems = await problemsOf(`images:\n  base:\n    base-imag: debian-12\n`);
    const p = problems.find((x) => x.path === 'images.base.base-imag');
    assert.ok(p, JSON.stringify(problems));
    assert.match(p.message, /unknown key; did you mean "base-image"/);
    assert.equal(p.line, 3);
  });

  it('reports wrong types', async () => {
    const problems = await problemsOf(`images:\n  base:\n    base-image: debian-12\ndeployments:\n  staging:\n    base:\n      servers: two\n`);
    const p = problems.find((x) => x.path === 'deployments.staging.base.servers');
    assert.ok(p, JSON.stringify(problems));
    assert.match(p.message, /must be a number, not the string "two"/);
    assert.equal(p.line, 7);
  });

  it('reports an image whose base does not exist', async () => {
    const problems = await problemsOf(`images:\n  base:\n    base-image: debian-12\n  app:\n    base-image: bsae\n`);
    const p = problems.find((x) => x.path === 'images.app.base-image');
    assert.ok(p, JSON.stringify(problems));
    assert.match(p.message, /neither an image of this file nor a base image of the local provider/);
    assert.match(p.message, /did you mean "base"/);
  });

  it('reports a cycle between images', async () => {
    const problems = await problemsOf(`images:\n  a:\n    base-image: b\n  b:\n    base-image: c\n  c:\n    base-image: a\n`);
    assert.ok(problems.some((p) => /cycle: a -> b -> c -> a/.test(p.message)), JSON.stringify(problems));
  });

  it('reports an image built from itself', async () => {
    const problems = await problemsOf(`images:\n  a:\n    base-image: a\n`);
    assert.ok(problems.some((p) => /cycle: a -> a/.test(p.message)), JSON.stringify(problems));
  });

  it('reports a script that is not executable, and one that is not a file', async () => {
    const problems = await problemsOf(VALID, (p) => {
      p.write('config/provisional/base/scripts/10-setup.sh', '#!/bin/sh\n', 0o644);
      p.write('config/provisional/app/scripts/20-dir/x', '');
    });
    assert.ok(problems.some((p) => /10-setup\.sh$/.test(p.file) && /not executable; run: chmod \+x/.test(p.message)), JSON.stringify(problems));
    assert.ok(problems.some((p) => /20-dir$/.test(p.file) && /is not a file/.test(p.message)), JSON.stringify(problems));
  });

  it('reports names a provider cannot take', async () => {
    const problems = await problemsOf(`images:\n  My_Image:\n    base-image: debian-12\n  debian-12:\n    base-image: debian-12\n`);
    assert.ok(problems.some((p) => p.path.startsWith('images') && /lower-case letters/.test(p.message)), JSON.stringify(problems));
  });

  it('reports an unset ${VAR}, and interpolates set ones and defaults', async () => {
    const yaml = `images:\n  base:\n    base-image: debian-12\n    env:\n      A: \${SET_VAR}\n      B: \${UNSET_VAR}\n      C: \${UNSET_TOO:-fallback}\n      D: $\${LITERAL}\n`;
    const problems = await problemsOf(yaml, undefined, { SET_VAR: 'x' });
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.path, 'images.base.env.B');
    assert.match(problems[0]!.message, /UNSET_VAR is not set/);
    assert.equal(problems[0]!.line, 6);

    project!.remove();
    project = tempProject();
    project.writeConfig(yaml.replace('      B: ${UNSET_VAR}\n', ''));
    const config = await loadConfig({ cwd: project.dir, env: { SET_VAR: 'x' } });
    assert.deepEqual(config.images.base!.env, { A: 'x', C: 'fallback', D: '${LITERAL}' });
  });

  it('marks secret-looking variables for redaction', async () => {
    project = tempProject();
    project.writeConfig(`images:\n  base:\n    base-image: debian-12\n    env:\n      T: \${MY_API_TOKEN}\n`);
    const config = await loadConfig({ cwd: project.dir, env: { MY_API_TOKEN: 'sekrit-123456' } });
    assert.ok(config.secrets.includes('sekrit-123456'));
  });

  it('reports an unknown provider with the available ones', async () => {
    const problems = await problemsOf(`provider: locall\nimages:\n  base:\n    base-image: debian-12\n`);
    assert.match(problems[0]!.message, /unknown provider "locall"; available: .*local.* \(did you mean "local"\?\)/);
  });

  it('reports deployments of unknown images', async () => {
    const problems = await problemsOf(`images:\n  base:\n    base-image: debian-12\ndeployments:\n  prod:\n    ap: { servers: 1 }\n`);
    assert.ok(problems.some((p) => p.path === 'deployments.prod.ap' && /no image "ap"/.test(p.message)));
  });

  it('reports from: naming an unknown environment, itself, a cycle, or one without the image, each with its line and the fix', async () => {
    const yaml = `images:\n  app:\n    base-image: debian-12\n  db:\n    base-image: debian-12\ndeployments:\n  staging:\n    app: { servers: 1, from: qa }\n    db: { servers: 1, from: stagin }\n  qa:\n    app: { servers: 1, from: staging }\n  production:\n    app: { servers: 1, from: production }\n    db: { servers: 1, from: qa }\n`;
    const problems = await problemsOf(yaml);
    const at = (path: string) => problems.filter((p) => p.path === path).map((p) => `${p.line}: ${p.message}`).join(' | ');
    assert.match(at('deployments.staging.db.from'), /^9: no environment "stagin" under deployments: \(did you mean "staging"\?\)/);
    assert.match(at('deployments.production.app.from'), /^13: an environment cannot take its versions from itself/);
    assert.match(at('deployments.production.db.from'), /^14: qa deploys no db.*add db to deployments\.qa, or remove from:/);
    assert.match(at('deployments.staging.app.from') + at('deployments.qa.app.from'), /in a cycle: (staging -> qa -> staging|qa -> staging -> qa); one of them must deploy the latest version/);
    assert.equal(problems.filter((p) => /cycle/.test(p.message)).length, 1, 'one cycle, reported once');
  });

  it('reports bad runtime env names and values, and deploy scripts that are not executable', async () => {
    let problems = await problemsOf(VALID.replace('app: { servers: 2 }', 'app: { servers: 2, env: { 1BAD: x } }'));
    assert.ok(problems.some((p) => p.path === 'deployments.staging.app.env.1BAD' && /letters, digits and underscores/.test(p.message) && p.line === 13), JSON.stringify(problems));
    project!.remove();
    const values = 'env: { GOOD_NAME: "a\\u0001b", OK: "tab\\there\\nnewline" }';
    problems = await problemsOf(VALID.replace('app: { servers: 2 }', `app: { servers: 2, ${values} }`), (p) => p.write('config/provisional/app/deploy/10-config.sh', '#!/bin/sh\n', 0o644));
    assert.ok(problems.some((p) => p.path === 'deployments.staging.app.env.GOOD_NAME' && /control character/.test(p.message) && p.line === 13), JSON.stringify(problems));
    assert.ok(!problems.some((p) => p.path === 'deployments.staging.app.env.OK'), JSON.stringify(problems));
    assert.ok(problems.some((p) => /app\/deploy\/10-config\.sh$/.test(p.file) && /not executable; run: chmod \+x/.test(p.message)), JSON.stringify(problems));
  });

  it('redacts runtime values under secret-looking names and from secret-looking variables', async () => {
    project = tempProject();
    project.writeConfig(`images:\n  app:\n    base-image: debian-12\ndeployments:\n  staging:\n    app:\n      servers: 1\n      env:\n        DB_PASSWORD: literal-secret-1\n        DATABASE_URL: postgres://app:\${DB_SECRET}@db/app\n        LOG_LEVEL: info\n`);
    const config = await loadConfig({ cwd: project.dir, env: { DB_SECRET: 'interpolated-secret-2' } });
    assert.ok(config.secrets.includes('literal-secret-1'));
    assert.ok(config.secrets.includes('interpolated-secret-2'));
    assert.ok(!config.secrets.includes('info'));
    assert.equal(config.deployments.staging!.app!.env!.DATABASE_URL, 'postgres://app:interpolated-secret-2@db/app');
  });

  it('checks an endpoint against the provider: unknown keys, a kind it does not have, bad values, each with its line', async () => {
    const problems = await problemsOf(`${VALID}    base: { servers: 1, endpoint: { port: 8080, target-port: 80, adress: 127.0.0.1 } }
  production:
    app: { servers: 1, endpoint: { reserved-ip: true } }
    db: { servers: 1, endpoint: { port: 99999, target-port: 80 } }
`);
    const by = (path: string) => problems.find((p) => p.path === path);
    assert.match(by('deployments.staging.base.endpoint.adress')!.message, /unknown key; did you mean "address"\? \(an endpoint of the local provider\)/);
    assert.equal(by('deployments.staging.base.endpoint.adress')!.line, 15);
    assert.match(by('deployments.production.app.endpoint.reserved-ip')!.message, /unknown key.*local provider/);
    assert.ok(by('deployments.production.app.endpoint.port'), 'the local endpoint needs a port');
    assert.match(by('deployments.production.db.endpoint.port')!.message, /65535/);
  });

  it('checks a Hetzner endpoint: unknown keys, a Floating IP on more than one server, a kind of another provider, each with its line', async () => {
    const hetzner = VALID.replace('  name: local', '  name: hetzner')
      .replace('app: { servers: 2 }', 'app: { servers: 2, endpoint: { floating-ip: true } }')
      .replace('db: { servers: 1, cold-only: true }', 'db: { servers: 1, endpoint: { load-balancer: { port: 80, target-prot: 80 } } }');
    const problems = await problemsOf(`${hetzner}  production:\n    app: { servers: 1, endpoint: { reserved-ip: true } }\n`);
    const by = (path: string) => problems.find((p) => p.path === path);
    assert.match(by('deployments.staging.app.endpoint')!.message, /one address for one server, and app has 2 servers here/);
    assert.equal(by('deployments.staging.app.endpoint')!.line, 13);
    assert.match(by('deployments.staging.db.endpoint.load-balancer.target-prot')!.message, /unknown key.*hetzner provider/);
    assert.equal(by('deployments.staging.db.endpoint.load-balancer.target-prot')!.line, 14);
    assert.match(by('deployments.production.app.endpoint')!.message, /no endpoint kind "reserved-ip" on the hetzner provider; it has: load-balancer, floating-ip/);
    assert.equal(by('deployments.production.app.endpoint')!.line, 16);
    project!.remove();
    project = tempProject();
    project.writeConfig(VALID.replace('  name: local', '  name: hetzner').replace('app: { servers: 2 }', 'app: { servers: 2, endpoint: { load-balancer: { port: 8080 } } }').replace('db: { servers: 1, cold-only: true }', 'db: { servers: 1, endpoint: { floating-ip: true } }'));
    const config = await loadConfig({ cwd: project.dir, env: {} });
    assert.deepEqual(config.deployments.staging!.app!.endpoint, { 'load-balancer': { port: 8080, 'target-port': 80, type: 'lb11' } });
    assert.deepEqual(config.deployments.staging!.db!.endpoint, { 'floating-ip': true });
  });

  it('accepts a local endpoint, an http health check, drain and rollout, with their defaults', async () => {
    project = tempProject();
    project.writeConfig(`${VALID.replace('app: { servers: 2 }', 'app: { servers: 2, endpoint: { port: 8080, target-port: 80 }, drain: 3, rollout: { batch: 1 }, health-check: { http: { port: 80 } } }')}`);
    const config = await loadConfig({ cwd: project.dir, env: {} });
    const app = config.deployments.staging!.app!;
    assert.deepEqual(app.endpoint, { port: 8080, 'target-port': 80, address: '127.0.0.1', protocol: 'http' });
    assert.deepEqual(app['health-check'], { http: { port: 80, path: '/', status: 200 }, timeout: 120, passes: 2 });
    assert.equal(app.drain, 3);
    assert.deepEqual(app.rollout, { batch: 1 });
  });

  it('refuses a one-server endpoint kind on an image with more servers, and an endpoint on a provider without any', () => {
    const problem = (path: PropertyKey[], message: string) => ({ file: 'c.yml', path: path.join('.'), message });
    const oneAddress = {
      name: 'cloud',
      endpointSchema: z.strictObject({ 'reserved-ip': z.literal(true) }),
      describeEndpoint: () => ({ kind: 'reserved IP', oneServer: true }),
    } as unknown as ProviderDefinition<unknown>;
    const deployments = (servers: number) => ({ prod: { app: { servers, 'cold-only': false, endpoint: { 'reserved-ip': true } } } });
    const [tooMany] = checkEndpoints(deployments(2), oneAddress, problem);
    assert.equal(tooMany?.path, 'prod.app.endpoint'.replace(/^/, 'deployments.'));
    assert.match(tooMany!.message, /a reserved IP is one address for one server, and app has 2 servers here/);
    assert.deepEqual(checkEndpoints(deployments(1), oneAddress, problem), []);
    const [none] = checkEndpoints(deployments(1), { name: 'bare' } as unknown as ProviderDefinition<unknown>, problem);
    assert.match(none!.message, /the bare provider has no endpoints/);
  });

  it("init's sample with an endpoint is valid: staging's app has it and an HTTP health check", async () => {
    project = tempProject();
    const local = (await loadProviderDefinition('local'))!;
    await writeSampleTree(project.dir, sampleTree('local', local.sampleBaseRef, undefined, local.sampleEndpoint ?? '{ port: 8080, target-port: 80 }'));
    const config = await loadConfig({ cwd: project.dir, env: {} });
    const app = config.deployments.staging!.app!;
    assert.deepEqual(app.endpoint, { port: 8080, 'target-port': 80, address: '127.0.0.1', protocol: 'http' });
    assert.deepEqual(app['health-check']?.http, { port: 80, path: '/', status: 200 });
    assert.equal(config.deployments.production!.app!.endpoint, undefined, 'one port, one environment');
  });

  it('refuses a health check with neither a command nor an http check', async () => {
    const problems = await problemsOf(VALID.replace('app: { servers: 2 }', 'app: { servers: 2, health-check: { timeout: 5 } }'));
    assert.match(problems.find((p) => p.path === 'deployments.staging.app.health-check')!.message, /a command, an http check, or both/);
  });

  it('reports every problem at once', async () => {
    const problems = await problemsOf(`images:\n  base:\n    base-image: debian-12\n    colour: red\n  app:\n    base-image: nope\n`);
    assert.ok(problems.length >= 1);
  });

  it('reports a missing config with the way out', async () => {
    project = tempProject();
    await assert.rejects(loadConfig({ cwd: project.dir, env: {} }), (err: ConfigError) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /no such file/);
      assert.match(err.hint ?? '', /provisional init/);
      return true;
    });
  });

  it('rejects a binary file and a non-mapping document', async () => {
    let problems = await problemsOf('\u0000\u0001binary');
    assert.match(problems[0]!.message, /binary/);
    project!.remove();
    problems = await problemsOf('- just\n- a list\n');
    assert.match(problems[0]!.message, /must be a mapping/);
  });

  it('derives a valid project name from any directory name', () => {
    assert.equal(projectNameFrom('/x/My Shop_2'), 'my-shop-2');
    assert.equal(projectNameFrom('/x/42'), 'project');
  });
});
