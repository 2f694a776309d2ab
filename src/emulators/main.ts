/**
 * `provisional-emulator`: cloud API emulators for trying Provisional, and other clients, with no
 * account. Each subcommand serves one cloud until Ctrl-C (or SIGTERM), then removes every machine
 * it started. Add a cloud by adding an entry to EMULATORS.
 */
import { parseArgs } from 'node:util';
import { digitalOceanEmulatorCommand } from './digitalocean/command.js';
import { awsEmulatorCommand } from './aws/command.js';
import { hetznerEmulatorCommand } from './hetzner/command.js';

interface Running {
  /** Lines telling the user how to point a client at it. */
  describe(): string[];
  close(): Promise<void>;
}

interface EmulatorCommand {
  summary: string;
  usage: string;
  /** parseArgs options beyond the common ones. */
  options: NonNullable<Parameters<typeof parseArgs>[0]>['options'];
  start(values: Record<string, string | boolean | undefined>): Promise<Running>;
}

const EMULATORS: Record<string, EmulatorCommand> = {
  digitalocean: digitalOceanEmulatorCommand,
  aws: awsEmulatorCommand,
  hetzner: hetznerEmulatorCommand,
};

function usage(): string {
  return [
    'usage: provisional-emulator CLOUD [options]',
    '',
    ...Object.entries(EMULATORS).map(([name, e]) => `  ${name.padEnd(14)} ${e.summary}\n                 ${e.usage}`),
    '',
    'Serves until Ctrl-C, then removes every machine it started. Runs as root (containers).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const emulator = EMULATORS[name];
  if (!emulator) {
    console.error(`provisional-emulator: unknown cloud "${name}"\n\n${usage()}`);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: { port: { type: 'string' }, host: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...emulator.options },
      strict: true,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    console.error(`provisional-emulator ${name}: ${(err as Error).message}\nusage: ${emulator.usage}`);
    return 2;
  }
  if (values.help) {
    console.log(`usage: ${emulator.usage}`);
    return 0;
  }
  if (values.port !== undefined && !/^\d+$/.test(String(values.port))) {
    console.error(`provisional-emulator ${name}: --port must be a number`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error('provisional-emulator: needs root (its machines are systemd-nspawn containers over overlay mounts)');
    return 2;
  }
  let running: Running;
  try {
    running = await emulator.start(values);
  } catch (err) {
    console.error(`provisional-emulator ${name}: ${(err as Error).message}`);
    return 1;
  }
  for (const line of running.describe()) console.log(line);
  console.log('Press Ctrl-C to stop (machines are removed).');
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) {
        console.error('second interrupt: exiting now');
        process.exit(130);
      }
      stopping = true;
      console.error(`${sig}: stopping the emulator and removing its machines…`);
      running.close().then(resolve, (err) => {
        console.error(`cleanup failed: ${(err as Error).message}`);
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
