/**
 * `provisional cleanup [--dry-run] [--yes]`: the reaper. Removes what runs that did not finish
 * (SIGKILL, out of memory, power loss) left at the provider, found both by the run journal and by
 * the provider's labels: builders of runs no live process owns, servers a deploy was starting,
 * temporary keys and security groups, half-made snapshots.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../../core/errors.js';
import { activeRunIds, forgetRun, unfinishedRuns } from '../../core/journal.js';
import { LABELS, type Server } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, opts: { dryRun?: boolean; yes?: boolean }): Promise<number> {
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config, { quiet: true });
  try {
    const [runs, active] = await Promise.all([unfinishedRuns(config.project), activeRunIds(config.project)]);
    const servers = provider.listServers ? await provider.listServers({ project: config.project }, ctx.signal) : [];
    const doomed = new Map<string, { server: Server; why: string }>();
    // Builders belong to a build; one whose run no live process owns is a leftover.
    for (const s of servers) {
      const runId = s.labels[LABELS.run];
      if (s.labels[LABELS.role] === 'builder' && runId && !active.has(runId)) doomed.set(s.id, { server: s, why: `builder of run ${runId}, which did not finish` });
    }
    // Servers a deploy was creating when it died.
    for (const run of runs) {
      for (const entry of run.entries.filter((e) => e.kind === 'machine')) {
        const s = servers.find((x) => (entry.id ? x.id === entry.id : x.name === entry.name && x.labels[LABELS.role] === entry.labels?.[LABELS.role]));
        if (s && !doomed.has(s.id)) doomed.set(s.id, { server: s, why: `created by \`provisional ${run.command}\`, which did not finish` });
      }
    }
    const runIds = new Set([...runs.map((r) => r.runId), ...[...doomed.values()].map((d) => d.server.labels[LABELS.run]).filter((r): r is string => !!r)]);
    const snapshotsOf = (runId: string) => runs.find((r) => r.runId === runId)?.entries.filter((e) => e.kind === 'snapshot').map((e) => e.name) ?? [];
    const extras: string[] = [];
    for (const runId of runIds) extras.push(...((await provider.removeRunResources?.(runId, { dryRun: true, signal: ctx.signal, snapshots: snapshotsOf(runId) })) ?? []));

    const items = [...[...doomed.values()].map((d) => `${d.server.name} (${d.why})`), ...extras];
    if (!items.length) {
      for (const run of runs) await forgetRun(config.project, run.runId);
      if (ctx.globals.json) ctx.reporter.printJson({ removed: [], runs: runs.map((r) => r.runId) });
      else ctx.reporter.print(runs.length ? `nothing left behind by ${runs.length} unfinished run${runs.length > 1 ? 's' : ''}; their journals are cleared` : 'nothing to clean up');
      return 0;
    }
    if (opts.dryRun) {
      if (ctx.globals.json) ctx.reporter.printJson({ wouldRemove: items });
      else ctx.reporter.print(['would remove:', ...items.map((i) => `  ${i}`)].join('\n'));
      return 0;
    }
    if (!opts.yes) {
      if (!process.stdin.isTTY) throw new UsageError(`cleanup would remove ${items.length} resource${items.length > 1 ? 's' : ''}, and there is no terminal to ask on`, 'see them with --dry-run; add --yes to remove them');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`remove:\n${items.map((i) => `  ${i}`).join('\n')}\n? [y/N] `, { signal: ctx.signal }).finally(() => rl.close());
      if (!/^y(es)?$/i.test(answer.trim())) {
        ctx.reporter.message('nothing removed');
        return 0;
      }
    }
    const removed: string[] = [];
    for (const { server } of doomed.values()) {
      await provider.destroyMachine(server, ctx.signal);
      removed.push(server.name);
      ctx.reporter.emit({ type: 'info', message: `removed ${server.name}` });
    }
    for (const runId of runIds) removed.push(...((await provider.removeRunResources?.(runId, { dryRun: false, signal: ctx.signal, snapshots: snapshotsOf(runId) })) ?? []));
    for (const run of runs) await forgetRun(config.project, run.runId);
    if (ctx.globals.json) ctx.reporter.printJson({ removed });
    else ctx.reporter.print(`removed ${removed.length}: ${removed.join(', ')}`);
    return 0;
  } finally {
    await provider.close?.();
  }
}
