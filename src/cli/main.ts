/**
 * The entry point: parses the command line, owns the AbortSignal that reaches every provider
 * call, and is the only place that turns errors into messages and exit codes. Command modules
 * are imported lazily so that `--help` and `validate` start fast.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, EXIT, UserFacingError, isCancelled } from '../core/errors.js';
import { Redactor } from '../core/redact.js';
import { Reporter } from './reporter.js';
import { toolVersion } from './version.js';
import type { CommandContext, GlobalOptions } from './context.js';

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  let reporter: Reporter | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts === 1) {
      const text = `${sig === 'SIGINT' ? 'interrupted' : `received ${sig}`}: cleaning up what this command created (press Ctrl-C again to force exit)`;
      // With --json, scripts reading stdout learn it in order with the step events.
      if (reporter?.mode === 'json') reporter.emit({ type: 'warn', message: text });
      (reporter?.message.bind(reporter) ?? ((t: string) => process.stderr.write(`${t}\n`)))(`\n${text}`);
      controller.abort();
    } else {
      process.stderr.write('forced exit: some resources may be left behind; run the same command again to see them\n');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let exitCode: number = EXIT.ok;
  let globals: GlobalOptions = { json: false, verbose: false, debug: false };
  const redactor = new Redactor();
  const context = (): CommandContext => {
    reporter ??= new Reporter({
      mode: Reporter.detectMode(globals.json),
      verbose: globals.verbose || globals.debug,
      redactor,
    });
    return { globals, reporter, signal: controller.signal, redactor, toolVersion: toolVersion() };
  };
  /** A command module exports run(ctx, ...what commander passes: arguments, then options). */
  const action =
    (load: () => Promise<{ run: (ctx: CommandContext, ...args: never[]) => Promise<number> }>) =>
    async (...args: unknown[]) => {
      globals = { json: false, verbose: false, debug: false, ...program.opts<Partial<GlobalOptions>>() };
      const mod = await load();
      exitCode = await (mod.run as (ctx: CommandContext, ...a: unknown[]) => Promise<number>)(context(), ...args);
    };

  const program = new Command('provisional')
    .description('Build versioned server images from images, and deploy immutable servers from them.')
    .version(toolVersion(), '-V, --version', 'print the version')
    .option('-c, --config <path>', 'config file (default: config/provisional/config.yml, here or above)')
    .option('--json', 'machine-readable output: NDJSON events and JSON results on stdout')
    .option('-v, --verbose', 'more detail')
    .option('--debug', 'stack traces and internal detail (secrets stay redacted)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('init')
    .description('write config/provisional/config.yml and a sample image tree (base, app, db)')
    .option('--provider <name>', 'provider to select', 'local')
    .action(action(() => import('./commands/init.js')));

  program
    .command('validate')
    .description('check the config and the image folders (no provider calls)')
    .action(action(() => import('./commands/validate.js')));

  const image = program.command('image').description('list, build, update and delete images');
  image
    .command('list')
    .alias('ls')
    .description("every image of the project with all its versions, and the provider's base images")
    .action(action(() => import('./commands/image-list.js')));
  image
    .command('show')
    .argument('<ref>', 'NAME@VERSION (the full name or the stamp), or NAME for its newest version')
    .description('where a version came from (commit, base, tool version, builder size, scripts, tests) and its chain of parents')
    .action(action(() => import('./commands/image-show.js')));
  image
    .command('create')
    .argument('<name>', 'image to build')
    .description('build a new version of NAME from the latest version of its base')
    .action(action(() => import('./commands/image-create.js')));
  image
    .command('update')
    .argument('[name]', 'image to rebuild (default: every image, parents first)')
    .option('-f, --force', 'rebuild even when the inputs did not change', false)
    .addOption(new Option('-p, --parallel <n>', 'images built at once').default(2).argParser(positiveInt('--parallel')))
    .description('rebuild images whose inputs (scripts, files, config, parent version) changed')
    .action(action(() => import('./commands/image-update.js')));
  image
    .command('delete')
    .alias('rm')
    .argument('<ref>', 'NAME (every version) or NAME@VERSION')
    .option('-y, --yes', 'do not ask')
    .description('delete a version, or every version of an image (refused while other versions are built on it)')
    .action(action(() => import('./commands/image-delete.js')));

  image
    .command('revoke')
    .argument('<ref>', 'NAME@VERSION')
    .option('--reason <text>', 'why (shown by `image list` and in every refusal)')
    .description('take a version out of use at the provider: never deployed, built on, rolled back or promoted to')
    .action(action(() => import('./commands/image-revoke.js')));
  image
    .command('restore')
    .argument('<ref>', 'NAME@VERSION')
    .description('lift a revocation: the version can be deployed and built on again')
    .action(action(() => import('./commands/image-restore.js')));

  image
    .command('prune')
    .argument('[name]', 'image to prune (default: every image)')
    .addOption(new Option('-k, --keep <n>', 'newest versions to keep per image (default: 3, or only the newest with --older-than)').argParser(positiveInt('--keep')))
    .option('--older-than <age>', 'delete only versions older than AGE: 30d, 12h, 2w, 1d12h (units s, m, h, d, w)')
    .option('--dry-run', 'list what would be deleted')
    .description('delete old versions; never one a server runs, a rollback would use, or a kept version is built on')
    .action(action(() => import('./commands/image-prune.js')));

  program
    .command('base')
    .description("the provider's base images")
    .command('update')
    .argument('[ref]', "base to rebuild (default: the provider's debian-12)")
    .description('local: build the base again from current Debian packages; the previous build stays for the versions built on it')
    .action(action(() => import('./commands/base-update.js')));

  program
    .command('deploy')
    .argument('[env]', 'environment (may be left out when there is only one)')
    .option('--cold', 'create every server, cold-only ones included; replace nothing')
    .option('--plan', 'print what would be created, replaced and destroyed, the version of each image and why; change nothing')
    .option('--from <env>', 'deploy, for every image, the version that this environment\'s servers run now (promotion)')
    .option('--pin <image@version>', 'deploy exactly this version of IMAGE (the full name or the stamp); may be repeated', (ref: string, all: string[]) => [...all, ref], [] as string[])
    .addOption(new Option('-p, --parallel <n>', 'servers started at once').default(8).argParser(positiveInt('--parallel')))
    .description('replace servers that run another version or config, create-before-destroy; scale to the configured count')
    .action(action(() => import('./commands/deploy.js')));

  program
    .command('rollback')
    .argument('<env>', 'environment')
    .argument('[image]', 'image to roll back (default: every image with servers in ENV)')
    .option('--to <version>', 'version to go to (default: the one before the running version)')
    .option('--plan', 'print what would change; change nothing')
    .addOption(new Option('-p, --parallel <n>', 'servers started at once').default(8).argParser(positiveInt('--parallel')))
    .description('deploy the previous version (or the one named) of an environment')
    .action(action(() => import('./commands/rollback.js')));

  const server = program.command('server').description('servers of the deployed environments');
  server
    .command('list')
    .alias('ls')
    .argument('[env]', 'environment (default: all)')
    .description('name, image, version, state and address of each server')
    .action(action(() => import('./commands/server-list.js')));

  program
    .command('ssh')
    .argument('<server>', 'server name, e.g. app1.staging')
    .argument('[command...]', 'command to run (after --); a shell when left out')
    .description('a shell on a server, or run a command there and exit with its status')
    .action(action(() => import('./commands/ssh.js')));

  program
    .command('destroy')
    .argument('<env>', 'environment')
    .option('-y, --yes', 'do not ask')
    .description('destroy every server of an environment')
    .action(action(() => import('./commands/destroy.js')));

  program
    .command('cleanup')
    .option('--dry-run', 'list what would be removed')
    .option('-y, --yes', 'do not ask')
    .description('remove what interrupted or killed runs left at the provider (builders, keys, security groups, half-made snapshots)')
    .action(action(() => import('./commands/cleanup.js')));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    exitCode = handleError(err, globals, reporter ?? context().reporter, controller.signal);
  } finally {
    reporter?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return exitCode;
}

function positiveInt(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new CommanderError(EXIT.usage, 'provisional.invalidArgument', `${flag} takes a whole number of at least 1, not "${value}"`);
    return n;
  };
}

export function handleError(err: unknown, globals: GlobalOptions, reporter: Reporter, signal: AbortSignal): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
    // Commander has printed its own message.
    if (err.code === 'provisional.invalidArgument') reporter.message(`error: ${err.message}`);
    return EXIT.usage;
  }
  if (isCancelled(err, signal)) {
    reporter.message('interrupted; cleanup done');
    return EXIT.interrupted;
  }
  if (err instanceof UserFacingError) {
    const heading = err instanceof ConfigError ? `error: invalid configuration (${err.problems.length} problem${err.problems.length > 1 ? 's' : ''}):` : 'error:';
    const body = err instanceof ConfigError ? err.message.split('\n').map((l) => `  ${l}`).join('\n') : ` ${err.message}`;
    reporter.message(`${heading}${err instanceof ConfigError ? '\n' : ''}${body}${err.hint ? `\n${err.hint}` : ''}`);
    if (globals.debug && err.stack) reporter.message(err.stack);
    if (globals.json) reporter.printJson({ type: 'error', message: err.message, hint: err.hint, exitCode: err.exitCode, problems: err instanceof ConfigError ? err.problems : undefined });
    return err.exitCode;
  }
  const e = err as Error;
  reporter.message(`internal error: ${e?.message ?? String(err)}`);
  reporter.message(globals.debug ? String(e?.stack) : 'this is a bug in provisional; run again with --debug for the stack trace and report it');
  return EXIT.failed;
}
