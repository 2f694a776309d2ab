import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import local from '../../src/providers/local/index.js';
import { localSettingsSchema, machineOptionsSchema, parsePortForward } from '../../src/providers/local/settings.js';

const sha = `sha256:${'a'.repeat(64)}`;

describe('local provider settings', () => {
  it('has defaults for everything', () => {
    const settings = localSettingsSchema.parse({});
    assert.equal(settings.memory, 1024);
    assert.equal(settings.cpus, 2);
    assert.equal(settings.accelerator, 'auto');
    assert.equal(settings.mirror, undefined);
    assert.deepEqual(settings.bases, {});
  });

  it('refuses unknown keys and wrong values, each with its path', () => {
    const result = localSettingsSchema.safeParse({ memroy: 512, cpus: 0, accelerator: 'hvf', mirror: 'ftp://x' });
    assert.equal(result.success, false);
    const paths = result.error!.issues.map((i) => i.path.join('.') || i.message).sort();
    assert.ok(paths.some((p) => p.includes('memroy')), `unknown key reported: ${paths}`);
    assert.ok(paths.includes('cpus'));
    assert.ok(paths.includes('accelerator'));
    assert.ok(paths.includes('mirror'));
  });

  it('takes extra bases with a required sha256 checksum', () => {
    const ok = localSettingsSchema.parse({
      bases: {
        'ubuntu-24': { url: 'https://cloud-images.example/noble.img', checksum: sha.toUpperCase().replace('SHA256', 'sha256') },
        'alpine-kernel': {
          url: 'file:///srv/alpine.qcow2',
          checksum: sha,
          kernel: { url: 'file:///srv/vmlinuz', checksum: sha },
          initrd: { url: 'file:///srv/initrd', checksum: sha },
          append: 'root=/dev/vda rw',
        },
      },
    });
    assert.equal(ok.bases['ubuntu-24']!.checksum, sha, 'checksum normalised to lower case');
    const missing = localSettingsSchema.safeParse({ bases: { x: { url: 'https://example/x.img' } } });
    assert.equal(missing.success, false);
    assert.deepEqual(missing.error!.issues[0]!.path, ['bases', 'x', 'checksum']);
    const md5 = localSettingsSchema.safeParse({ bases: { x: { url: 'https://example/x.img', checksum: 'md5:abc' } } });
    assert.equal(md5.success, false);
    const initrdAlone = localSettingsSchema.safeParse({ bases: { x: { url: 'https://e/x', checksum: sha, initrd: { url: 'https://e/i', checksum: sha } } } });
    assert.equal(initrdAlone.success, false);
    const builtIn = localSettingsSchema.safeParse({ bases: { 'debian-12': { url: 'https://e/x', checksum: sha } } });
    assert.equal(builtIn.success, false, 'debian-12 cannot be redefined');
    const badName = localSettingsSchema.safeParse({ bases: { 'Bad Name': { url: 'https://e/x', checksum: sha } } });
    assert.equal(badName.success, false);
  });

  it('knows its base refs without calling anything', () => {
    const settings = localSettingsSchema.parse({ bases: { 'ubuntu-24': { url: 'https://e/x', checksum: sha } } });
    assert.deepEqual(local.knownBaseRefs!(settings), ['debian-12', 'ubuntu-24']);
    assert.equal(local.checkBaseRef!('debian-12', settings), undefined);
    assert.equal(local.checkBaseRef!('ubuntu-24', settings), undefined);
    assert.match(local.checkBaseRef!('debian-11', settings)!, /no base image "debian-11".*debian-12, ubuntu-24/);
  });

  it('checks image names like the config does', () => {
    assert.equal(local.checkImageName!('app-2'), undefined);
    assert.match(local.checkImageName!('App')!, /lower-case/);
    assert.match(local.checkImageName!('2app')!, /starting with a letter/);
    assert.match(local.checkImageName!('a_b')!, /lower-case/);
    assert.equal(local.checkImageName!('a'.repeat(48)), undefined);
    assert.match(local.checkImageName!('a'.repeat(49))!, /48/);
  });
});

describe('local machine options', () => {
  it('ignores other providers\' options, refuses unknown ones, and checks its own', () => {
    const parsed = machineOptionsSchema.parse({ size: 's-1vcpu-1gb', region: 'nyc3', ports: ['8080:80'] });
    assert.deepEqual(parsed.ports, ['8080:80']);
    assert.equal(parsed.size, undefined);
    assert.equal(machineOptionsSchema.safeParse({ flavour: 'large' }).success, false);
    assert.equal(machineOptionsSchema.safeParse({ ports: ['80'] }).success, false);
    assert.equal(machineOptionsSchema.safeParse({ memory: 64 }).success, false);
  });

  it('parses port forwards, loopback by default', () => {
    assert.deepEqual(parsePortForward('8080:80'), { address: '127.0.0.1', hostPort: 8080, guestPort: 80 });
    assert.deepEqual(parsePortForward('0.0.0.0:8443:443'), { address: '0.0.0.0', hostPort: 8443, guestPort: 443 });
    assert.throws(() => parsePortForward('70000:80'), /out of range/);
    assert.throws(() => parsePortForward('x:80'), /bad port forward/);
  });
});
