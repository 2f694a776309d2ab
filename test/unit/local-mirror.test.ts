import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MIRROR,
  DEFAULT_SECURITY_MIRROR,
  parseDeb822Sources,
  parseOneLineSources,
  resolveMirrors,
} from '../../src/providers/local/mirror.js';
import { debianSources, mmdebstrapArgs } from '../../src/providers/local/debian-base.js';

const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example.org/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

describe('local provider mirror', () => {
  it('reads deb822 sources: the main and the security mirror, without trailing slashes', () => {
    const sources = parseDeb822Sources(deb822);
    assert.equal(sources.length, 2, 'deb-src skipped');
    assert.deepEqual(resolveMirrors(undefined, { deb822 }), {
      mirror: 'http://mirror.example.org/debian',
      security: 'http://mirror.example.org/debian-security',
    });
  });

  it('skips disabled entries and continuation lines do not confuse it', () => {
    const text = `Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs:\n http://on.example/debian\nSuites: bookworm\n`;
    assert.deepEqual(resolveMirrors(undefined, { deb822: text }).mirror, 'http://on.example/debian');
  });

  it('reads one-line sources.list, with options and comments', () => {
    const text = [
      '# deb http://commented.example/debian bookworm main',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian bookworm main contrib',
      'deb http://security.example/debian-security bookworm-security main',
      'deb cdrom:[Debian]/ bookworm main',
    ].join('\n');
    assert.deepEqual(parseOneLineSources(text).length, 3);
    assert.deepEqual(resolveMirrors(undefined, { oneLine: text }), {
      mirror: 'http://one.example/debian',
      security: 'http://security.example/debian-security',
    });
  });

  it('prefers the setting, then deb822, then sources.list, then deb.debian.org', () => {
    assert.deepEqual(resolveMirrors('http://set.example/debian/', { deb822 }), { mirror: 'http://set.example/debian', security: undefined });
    assert.deepEqual(resolveMirrors(DEFAULT_MIRROR, {}), { mirror: DEFAULT_MIRROR, security: DEFAULT_SECURITY_MIRROR });
    assert.equal(resolveMirrors(undefined, { deb822, oneLine: 'deb http://other/debian bookworm main' }).mirror, 'http://mirror.example.org/debian');
    assert.equal(resolveMirrors(undefined, { deb822: '', oneLine: 'deb http://other/debian bookworm main' }).mirror, 'http://other/debian');
    assert.deepEqual(resolveMirrors(undefined, {}), { mirror: DEFAULT_MIRROR, security: DEFAULT_SECURITY_MIRROR });
    assert.deepEqual(resolveMirrors(undefined, { oneLine: 'deb cdrom:[x]/ bookworm main' }).mirror, DEFAULT_MIRROR);
  });

  it('gives mmdebstrap the suites and the sources the image keeps', () => {
    assert.deepEqual(debianSources({ mirror: 'http://m/debian', security: 'http://m/debian-security' }), [
      'deb http://m/debian bookworm main',
      'deb http://m/debian bookworm-updates main',
      'deb http://m/debian-security bookworm-security main',
    ]);
    assert.equal(debianSources({ mirror: 'http://m/debian' }).length, 2);
    const args = mmdebstrapArgs('/tmp/root', "/tmp/it's early", { mirror: 'http://m/debian' });
    assert.ok(args.includes('--variant=minbase'));
    assert.ok(args.some((a) => a.startsWith('--include=') && a.includes('openssh-server') && a.includes('linux-image-amd64')));
    assert.ok(args.includes(`--setup-hook=cp -a '/tmp/it'\\''s early'/. "$1/"`), 'the hook path is shell-quoted');
    assert.equal(args.at(-2), '/tmp/root');
  });
});
