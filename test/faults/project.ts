/**
 * The application every fault case builds and deploys: one image `app` (and `timed`, the same
 * scripts under a short script-timeout), two environments (`staging`, deployed warm; `cold`, kept
 * empty for cold deploys). Its scripts take their faults from the environment, through `env:` in
 * the config, so that one project serves every case:
 *   FAULT_SLOW=N   the work script prints `sleeping` and sleeps N s (a step to interrupt)
 *   FAULT_FAIL=1   the first script fails (exit 3), after printing the canary
 *   FAULT_FILL=tmpfs|root   fill a disk until ENOSPC: a small tmpfs (containers share the host's
 *                  disk, which must not fill), or the builder's own root file system (QEMU)
 *   FAULT_DROPSSH=1 kill every sshd on the builder, the session included
 * TOKEN carries the canary, which the scripts print on stdout and stderr.
 * Image `tested` is `app` with an image test, which takes FAULT_TEST_SLOW=N (prints `test sleeping`
 * and sleeps N s: a test step to interrupt).
 * `staging` has runtime config (the canary again, and toggles for its deploy script):
 *   DEPLOY_SLOW=N  the deploy script prints `deploy sleeping` and sleeps N s
 *   DEPLOY_FAIL=1  the deploy script fails (exit 4), after printing the canary
 */
import { tempProject, type TempProject } from '../helpers/project.js';

export interface ProjectOptions {
  /** The `provider:` block, as YAML lines indented by two spaces. */
  provider: string;
  baseImage: string;
  /** Extra keys for image `app` (e.g. `regions: [nyc3, sfo3]`). */
  appExtra?: string;
  healthCommand?: string;
}

const CANARY_SCRIPT = `#!/bin/sh
set -e
echo "canary: $TOKEN"
echo "canary on stderr: $TOKEN" >&2
if [ "$FAULT_FAIL" = 1 ]; then echo "failing on purpose with $TOKEN"; exit 3; fi
`;

const WORK_SCRIPT = `#!/bin/sh
set -e
if [ "$FAULT_SLOW" != 0 ]; then echo sleeping; sleep "$FAULT_SLOW"; fi
if [ "$FAULT_DROPSSH" = 1 ]; then echo "dropping SSH"; pkill -KILL sshd || true; sleep 60; fi
case "$FAULT_FILL" in
  tmpfs)
    mkdir -p /mnt/full
    if mount -t tmpfs -o size=4m tmpfs /mnt/full; then
      dd if=/dev/zero of=/mnt/full/fill bs=1M count=64
    else
      dd if=/dev/zero of=/dev/full bs=1M count=1
    fi ;;
  root)
    free=$(stat -f -c %f /); bsize=$(stat -f -c %S /)
    fallocate -l $(( free * bsize - 4194304 )) /var/tmp/fill || true
    dd if=/dev/zero of=/var/tmp/fill2 bs=1M count=64 ;;
esac
echo "built by the fault matrix" > /etc/fault-matrix
`;

const IMAGE_TEST = `#!/bin/sh
set -e
test -s /etc/fault-matrix
if [ "\${FAULT_TEST_SLOW:-0}" != 0 ]; then echo "test sleeping"; sleep "$FAULT_TEST_SLOW"; fi
echo "test passed"
`;

// Deploy scripts are the image's: they run in every environment, also \`cold\` which has no env values.
const DEPLOY_SCRIPT = `#!/bin/sh
set -e
echo "deploying with \${TOKEN:-no token}"
if [ "\${DEPLOY_SLOW:-0}" != 0 ]; then echo "deploy sleeping"; sleep "$DEPLOY_SLOW"; fi
if [ "\${DEPLOY_FAIL:-0}" = 1 ]; then echo "deploy failing on purpose with $TOKEN" >&2; exit 4; fi
`;

export function faultProject(opts: ProjectOptions): TempProject {
  const project = tempProject('provisional-faults-');
  const env = `    env:
      TOKEN: \${CANARY_TOKEN}
      FAULT_SLOW: \${FAULT_SLOW:-0}
      FAULT_FAIL: \${FAULT_FAIL:-0}
      FAULT_FILL: \${FAULT_FILL:-none}
      FAULT_DROPSSH: \${FAULT_DROPSSH:-0}
`;
  const health = opts.healthCommand ?? 'sleep 2';
  project.writeConfig(`project: faults
provider:
${opts.provider}
images:
  app:
    base-image: ${opts.baseImage}
${opts.appExtra ?? ''}${env}  timed:
    base-image: ${opts.baseImage}
    script-timeout: 4
${env}  tested:
    base-image: ${opts.baseImage}
${env}      FAULT_TEST_SLOW: \${FAULT_TEST_SLOW:-0}
deployments:
  staging:
    app:
      servers: 1
      health-check: { command: "${health}", timeout: 60 }
      env:
        TOKEN: \${CANARY_TOKEN}
        DEPLOY_SLOW: \${DEPLOY_SLOW:-0}
        DEPLOY_FAIL: \${DEPLOY_FAIL:-0}
  cold:
    app: { servers: 1, health-check: { command: "${health}", timeout: 60 } }
`);
  project.write('config/provisional/tested/tests/10-slow.sh', IMAGE_TEST, 0o755);
  for (const image of ['app', 'timed', 'tested']) {
    project.write(`config/provisional/${image}/scripts/10-canary.sh`, CANARY_SCRIPT, 0o755);
    project.write(`config/provisional/${image}/scripts/20-work.sh`, WORK_SCRIPT, 0o755);
    project.write(`config/provisional/${image}/files/motd`, 'fault matrix\n');
  }
  project.write('config/provisional/app/deploy/10-deploy.sh', DEPLOY_SCRIPT, 0o755);
  return project;
}
