/**
 * `provisional init`: a config and a sample image tree (base <- app, base <- db). Writes only
 * files that do not exist; refuses outright when the config itself exists. The sample app answers
 * HTTP on port 80 with nothing but what a minimal Debian has (a Perl script, perl-base, saying
 * which build it is), so that a deploy can be checked with curl.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CONFIG_RELATIVE_PATH } from './load.js';

export interface SampleFile {
  path: string;
  content: string;
  mode: number;
}

export function sampleTree(provider: string, baseRef: string, schemaUrl?: string, endpoint?: string): SampleFile[] {
  const dir = dirname(CONFIG_RELATIVE_PATH);
  const file = (path: string, content: string, mode = 0o644): SampleFile => ({ path: join(dir, path), content, mode });
  const script = (path: string, content: string) => file(path, content, 0o755);
  // With an endpoint, servers join it once they answer HTTP; without, the service running will do.
  const healthCheck = endpoint
    ? '      health-check:     # GET / on port 80, through the SSH connection; it must pass twice in a row\n        http: { port: 80, path: /, status: 200 }\n        timeout: 120\n'
    : '      health-check:\n        command: systemctl is-active app.service\n        timeout: 120\n';
  return [
    file(
      'config.yml',
      `${schemaUrl ? `# yaml-language-server: $schema=${schemaUrl}\n` : ''}# Provisional: images built from images, servers deployed from images.
# Each image's scripts are in config/provisional/<image>/scripts/ (run as root, in lexical order,
# stopping at the first failure); its files/ are uploaded to /var/tmp/provisional/files first.
# \${VAR} takes a value from the environment (\${VAR:-default} with a default), so secrets stay out of this file.

provider:
  name: ${provider}

images:
  base:
    base-image: ${baseRef.includes('*') ? JSON.stringify(baseRef) : baseRef}
    description: common packages and settings for every server
  app:
    base-image: base
  db:
    base-image: base

deployments:
  staging:
    app:
      servers: 2
${endpoint ? `      endpoint: ${endpoint}\n` : ''}${healthCheck}      env:              # runtime configuration: /etc/provisional/env on each new server (root, 0600),
        APP_MODE: staging   # then app/deploy/* run with these variables; a change replaces the servers
        # API_TOKEN: \${API_TOKEN}   # secrets belong here, from your environment; never in an image's env:
    db:
      servers: 1
      cold-only: true   # never replaced by an ordinary deploy
  production:
    app:
      servers: 2
      from: staging     # deploy the version staging runs now, not the latest build
${healthCheck}      env:
        APP_MODE: production
    db:
      servers: 1
      cold-only: true
      from: staging
`,
    ),
    file('base/files/motd', 'This server was built by Provisional. Do not change it by hand: build a new image.\n'),
    script(
      'base/scripts/10-system.sh',
      `#!/bin/sh
# Runs as root on the builder, in /var/tmp/provisional/files (also $PROVISIONAL_FILES).
# A real base would install packages here, e.g.: apt-get update && apt-get install -y curl
set -eu
install -m 0644 motd /etc/motd
echo "base: built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /etc/provisional-release
`,
    ),
    file(
      'app/files/app.service',
      `[Unit]
Description=Sample application
After=network.target

[Service]
# The environment's env: values, written by provisional deploy (absent in the image itself).
EnvironmentFile=-/etc/provisional/env
ExecStart=/opt/app/app.sh
Restart=always

[Install]
WantedBy=multi-user.target
`,
    ),
    script(
      'app/files/app.sh',
      `#!/bin/sh
# The sample application: writes a heartbeat, and the mode its environment gave it, every few seconds.
mkdir -p /var/lib/app
while true; do echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) mode=\${APP_MODE:-unset}" > /var/lib/app/heartbeat; sleep 5; done
`,
    ),
    file(
      'app/files/app-web.service',
      `[Unit]
Description=Sample application: HTTP on port 80
After=network.target

[Service]
EnvironmentFile=-/etc/provisional/env
ExecStart=/opt/app/web.pl
Restart=always

[Install]
WantedBy=multi-user.target
`,
    ),
    script(
      'app/files/web.pl',
      `#!/usr/bin/perl
# The sample application's web side: one process answering every connection on port 80 with which
# build of app this server runs, its mode and its name. Perl (perl-base) is in every Debian, and one
# process for all requests keeps up even on a software-emulated machine.
use strict;
use IO::Socket::INET;
sub first_line { open(my $f, '<', $_[0]) or return '?'; my $l = <$f>; chomp $l; return $l }
my $server = IO::Socket::INET->new(LocalPort => 80, Listen => 128, ReuseAddr => 1) or die "listen on port 80: $!";
while (my $c = $server->accept) {
  while (my $line = <$c>) { last if $line =~ /^\\r?$/ }
  my $body = first_line('/etc/app-build') . ' mode=' . ($ENV{APP_MODE} // 'unset') . ' server=' . first_line('/etc/app-server') . "\\n";
  print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " . length($body) . "\\r\\nConnection: close\\r\\n\\r\\n$body";
  close $c;
}
`,
    ),
    script(
      'app/scripts/10-app.sh',
      `#!/bin/sh
set -eu
install -D -m 0755 app.sh /opt/app/app.sh
install -D -m 0755 web.pl /opt/app/web.pl
install -m 0644 app.service app-web.service /etc/systemd/system/
systemctl enable app.service app-web.service
echo "app built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /etc/app-build
echo "app: built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> /etc/provisional-release
`,
    ),
    script(
      'app/deploy/10-restart.sh',
      `#!/bin/sh
# Runs as root on each new server after /etc/provisional/env is written and before the health
# check, with its values in the environment: render config files here, then (re)start services.
set -eu
echo "app: configuring for \${APP_MODE:-unset}"
echo "$PROVISIONAL_SERVER" > /etc/app-server   # this server's name, which the app says
systemctl reset-failed app-web.service 2>/dev/null || true   # a start limit hit at boot must not refuse this restart
systemctl restart app.service app-web.service
`,
    ),
    script(
      'db/scripts/10-db.sh',
      `#!/bin/sh
set -eu
id db >/dev/null 2>&1 || useradd --system --home-dir /var/lib/db --create-home db
echo "db: built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> /etc/provisional-release
`,
    ),
    file('app/files/.keep', ''),
    file('db/files/.keep', ''),
  ];
}

/** Writes the sample tree under `root`; returns what it wrote and what it left alone. */
export async function writeSampleTree(root: string, files: SampleFile[]): Promise<{ written: string[]; kept: string[] }> {
  const written: string[] = [];
  const kept: string[] = [];
  for (const f of files) {
    const abs = join(root, f.path);
    if (existsSync(abs)) {
      kept.push(f.path);
      continue;
    }
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, f.content, { flag: 'wx' });
    await chmod(abs, f.mode);
    written.push(f.path);
  }
  return { written, kept };
}
