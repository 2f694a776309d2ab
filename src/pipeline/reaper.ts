/**
 * The reaper's rules (`provisional cleanup`): what runs that did not finish (SIGKILL, out of
 * memory, power loss) left at the provider, found both by the run journal and by the provider's
 * labels, and its removal. The CLI only shows the list, asks, and reports.
 *   - a builder or test server whose run no live process owns is a leftover;
 *   - a version still marked as being tested by such a run (its image tests never passed), found
 *     by its mark at the provider or in the run's journal, is a leftover: it was never usable;
 *   - a server a deploy was creating when it died (named in that run's journal) is a leftover;
 *   - each such run's temporary keys, security groups and half-made snapshots (the journal names
 *     the versions whose snapshot step never finished) are leftovers;
 *   - an endpoint member whose server is gone or is a leftover is detached; an endpoint that such a
 *     run created (its journal names it) and that has no member left is removed;
 *   - a running server of an environment and image such a run was deploying, and that is not in
 *     their endpoint or is draining there, joins it again: the run took it out to drain it (a
 *     SIGKILL while draining), and with the run's new servers gone it is what serves. Its
 *     endpoint's settings come from the config (`specOf`); without them it is left for the next
 *     deploy, which attaches it.
 */
import { activeRunIds, forgetRun, unfinishedRuns, type JournalRecord } from '../core/journal.js';
import { LABELS, type EndpointRef, type ImageVersion, type Provider, type Server } from '../providers/types.js';

export interface Leftovers {
  /** Machines to destroy, each with why it is a leftover. */
  machines: { server: Server; why: string }[];
  /** Versions to delete (after the machines: a test server boots from one), each with why. */
  versions: { version: ImageVersion; why: string }[];
  /** Runs whose other resources to remove (their ids). */
  runIds: string[];
  /** What removeRunResources would remove, described. */
  resources: string[];
  /** The unfinished runs' journals, forgotten once their leftovers are gone. */
  runs: JournalRecord[];
  /** Endpoint members to detach (their servers are gone or leftovers), and endpoints to remove. */
  members: { ref: EndpointRef; machine: { id: string; name: string }; why: string }[];
  endpoints: { ref: EndpointRef; address: string; why: string }[];
  /** Servers to put back into their endpoint (a dead deploy took them out), with the endpoint's spec. */
  rejoin: { ref: EndpointRef; spec: unknown; servers: Server[]; why: string }[];
}

/** The `endpoint:` settings the config has for an environment's image, if any. */
export type EndpointSpecOf = (ref: EndpointRef) => unknown;

export async function findLeftovers(provider: Provider, project: string, signal: AbortSignal, specOf: EndpointSpecOf = () => undefined): Promise<Leftovers> {
  const [runs, active] = await Promise.all([unfinishedRuns(project), activeRunIds(project)]);
  const [servers, versions] = await Promise.all([provider.listServers({ project }, signal), provider.listImageVersions(signal)]);
  const doomed = new Map<string, { server: Server; why: string }>();
  for (const s of servers) {
    const runId = s.labels[LABELS.run];
    const role = s.labels[LABELS.role];
    if ((role === 'builder' || role === 'test') && runId && !active.has(runId)) doomed.set(s.id, { server: s, why: `${role === 'test' ? 'test server' : 'builder'} of run ${runId}, which did not finish` });
  }
  const untested = new Map<string, { version: ImageVersion; why: string }>();
  for (const v of versions) {
    if (v.testing && !active.has(v.testing)) untested.set(v.version, { version: v, why: `being tested by run ${v.testing}, which did not finish: its tests never passed` });
  }
  for (const run of runs) {
    for (const entry of run.entries.filter((e) => e.kind === 'version')) {
      const v = versions.find((x) => x.version === entry.name);
      // Only while still marked by that run: once its tests passed, the version is the user's.
      if (v?.testing === run.runId && !untested.has(v.version)) untested.set(v.version, { version: v, why: `being tested by \`provisional ${run.command}\`, which did not finish` });
    }
  }
  for (const run of runs) {
    for (const entry of run.entries.filter((e) => e.kind === 'machine')) {
      const s = servers.find((x) => (entry.id ? x.id === entry.id : x.name === entry.name && x.labels[LABELS.role] === entry.labels?.[LABELS.role]));
      if (s && !doomed.has(s.id)) doomed.set(s.id, { server: s, why: `created by \`provisional ${run.command}\`, which did not finish` });
    }
  }
  const runIds = [...new Set([...runs.map((r) => r.runId), ...[...doomed.values()].map((d) => d.server.labels[LABELS.run]).filter((r): r is string => !!r)])];
  const resources: string[] = [];
  for (const runId of runIds) resources.push(...((await provider.removeRunResources?.(runId, { dryRun: true, signal, snapshots: snapshotsOf(runs, runId) })) ?? []));
  const { members, endpoints, rejoin } = await endpointLeftovers(provider, project, servers, doomed, runs, signal, specOf);
  return { machines: [...doomed.values()], versions: [...untested.values()], runIds, resources, runs, members, endpoints, rejoin };
}

async function endpointLeftovers(provider: Provider, project: string, servers: Server[], doomed: Map<string, unknown>, runs: JournalRecord[], signal: AbortSignal, specOf: EndpointSpecOf) {
  const members: Leftovers['members'] = [];
  const endpoints: Leftovers['endpoints'] = [];
  const rejoin: Leftovers['rejoin'] = [];
  if (!provider.endpoints) return { members, endpoints, rejoin };
  const live = servers.filter((s) => !doomed.has(s.id));
  const liveIds = new Set(live.map((s) => s.id));
  for (const e of await provider.endpoints.list(project, signal)) {
    const ref = { project: e.project, environment: e.environment, image: e.image };
    const gone = e.members.filter((m) => !liveIds.has(m.machineId));
    for (const m of gone) members.push({ ref, machine: { id: m.machineId, name: m.name ?? m.machineId }, why: `its server is ${doomed.has(m.machineId) ? 'a leftover' : 'gone'}` });
    const deployer = runs.find((r) => r.entries.some((x) => (x.kind === 'machine' && x.labels?.[LABELS.role] === 'server' && x.labels[LABELS.environment] === e.environment && x.labels[LABELS.image] === e.image) || (x.kind === 'endpoint' && x.name === `${e.environment}/${e.image}`)));
    // A draining member is on its way out (an ELBv2 target, a HAProxy server in drain): the dead run was draining it.
    const memberIds = new Set(e.members.filter((m) => m.state !== 'draining').map((m) => m.machineId));
    const outside = live.filter((s) => s.state === 'running' && s.labels[LABELS.role] === 'server' && s.labels[LABELS.environment] === e.environment && s.labels[LABELS.image] === e.image && !memberIds.has(s.id));
    const spec = specOf(ref);
    if (deployer && outside.length && spec !== undefined) rejoin.push({ ref, spec, servers: outside, why: `taken out by \`provisional ${deployer.command}\`, which did not finish` });
    const creator = runs.find((r) => r.entries.some((x) => x.kind === 'endpoint' && x.name === `${e.environment}/${e.image}`));
    if (creator && gone.length === e.members.length && !rejoin.some((r) => r.ref.environment === e.environment && r.ref.image === e.image)) {
      endpoints.push({ ref, address: e.address, why: `created by \`provisional ${creator.command}\`, which did not finish` });
    }
  }
  // An endpoint a dead run created before any server joined it is not listed (providers find
  // endpoints through their servers' labels): its journal entry names it, so ask for it by name.
  for (const run of runs) {
    for (const entry of run.entries.filter((x) => x.kind === 'endpoint')) {
      const [environment = '', image = ''] = entry.name.split('/');
      if (endpoints.some((e) => e.ref.environment === environment && e.ref.image === image) || rejoin.some((r) => r.ref.environment === environment && r.ref.image === image)) continue;
      const ref = { project, environment, image };
      const status = await provider.endpoints.status(ref, specOf(ref), signal);
      if (status && status.members.every((m) => !liveIds.has(m.machineId))) endpoints.push({ ref, address: status.address, why: `created by \`provisional ${run.command}\`, which did not finish` });
    }
  }
  return { members, endpoints, rejoin };
}

/** Everything a leftover list names, described one per line. */
export function describeLeftovers(found: Leftovers): string[] {
  return [
    ...found.rejoin.flatMap((r) => r.servers.map((s) => `${s.name} back into the endpoint of ${r.ref.image} in ${r.ref.environment} (${r.why})`)),
    ...found.members.map((m) => `${m.machine.name} in the endpoint of ${m.ref.image} in ${m.ref.environment} (${m.why})`),
    ...found.endpoints.map((e) => `the endpoint of ${e.ref.image} in ${e.ref.environment} at ${e.address} (${e.why})`),
    ...found.machines.map((d) => `${d.server.name} (${d.why})`),
    ...found.versions.map((d) => `version ${d.version.version} (${d.why})`),
    ...found.resources,
  ];
}

/** Remove the leftovers, then forget their runs. Returns what was removed; `onRemoved` hears each machine. */
export async function removeLeftovers(provider: Provider, project: string, found: Leftovers, signal: AbortSignal, onRemoved?: (name: string) => void): Promise<string[]> {
  const removed: string[] = [];
  // Servers a dead deploy took out go back first, so that the endpoint always has members; then
  // leftovers leave it before they go: no client is sent to a server about to go.
  for (const r of found.rejoin) {
    await provider.endpoints!.attach(r.ref, r.spec, r.servers, signal);
    removed.push(...r.servers.map((s) => `${s.name} (back in the endpoint)`));
  }
  for (const m of found.members) {
    await provider.endpoints!.detach(m.ref, undefined, [m.machine], 0, signal);
    removed.push(`${m.machine.name} (endpoint member)`);
  }
  for (const e of found.endpoints) {
    await provider.endpoints!.remove(e.ref, undefined, signal);
    removed.push(`endpoint ${e.ref.environment}/${e.ref.image}`);
  }
  for (const { server } of found.machines) {
    await provider.destroyMachine(server, signal);
    removed.push(server.name);
    onRemoved?.(server.name);
  }
  for (const { version } of found.versions) {
    await provider.deleteImageVersion(version, signal);
    removed.push(`version ${version.version}`);
    onRemoved?.(`version ${version.version}`);
  }
  for (const runId of found.runIds) removed.push(...((await provider.removeRunResources?.(runId, { dryRun: false, signal, snapshots: snapshotsOf(found.runs, runId) })) ?? []));
  await forgetRuns(project, found);
  return removed;
}

export async function forgetRuns(project: string, found: Leftovers): Promise<void> {
  for (const run of found.runs) await forgetRun(project, run.runId);
}

function snapshotsOf(runs: JournalRecord[], runId: string): string[] {
  return runs.find((r) => r.runId === runId)?.entries.filter((e) => e.kind === 'snapshot').map((e) => e.name) ?? [];
}
