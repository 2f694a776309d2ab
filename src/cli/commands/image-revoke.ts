/**
 * `provisional image revoke NAME@VERSION [--reason TEXT]` and `image restore NAME@VERSION`: set or
 * lift the revocation mark at the provider (images/choice.ts then never chooses the version).
 * Revoking a version that servers run is allowed; the warning names them and how to replace them.
 */
import { UsageError, UserFacingError } from '../../core/errors.js';
import { choicesHint } from '../../images/choice.js';
import { byNewest, parseImageRef } from '../../images/naming.js';
import { LABELS, type ImageVersion, type Provider } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

/** EC2 tag values hold 256 characters; the rest of the metadata shares a description elsewhere. */
const MAX_REASON = 200;

export async function run(ctx: CommandContext, ref: string, opts: { reason?: string }): Promise<number> {
  const reason = (opts.reason ?? '').trim();
  if (reason.length > MAX_REASON) throw new UsageError(`--reason is ${reason.length} characters long; at most ${MAX_REASON}`);
  if (/[\u0000-\u001f\u007f]/.test(reason)) throw new UsageError('--reason must be one line of text (no control characters or newlines)');
  return mark(ctx, ref, 'revoke', async (provider, version) => {
    const at = new Date().toISOString();
    const updated = await provider.updateVersionMetadata(version, { revoked: { reason, at } }, ctx.signal);
    const servers = (await provider.listServers({ role: 'server' }, ctx.signal)).filter((s) => s.labels[LABELS.version] === version.version);
    if (servers.length) {
      const environments = [...new Set(servers.map((s) => s.labels[LABELS.environment] ?? '?'))].sort();
      ctx.reporter.emit({
        type: 'warn',
        message: `${servers.map((s) => s.name).sort().join(', ')} still run${servers.length === 1 ? 's' : ''} ${version.version}; replace ${servers.length === 1 ? 'it' : 'them'} with: ${environments.map((e) => `provisional deploy ${e}`).join('; ')}`,
      });
    }
    return { updated, servers: servers.map((s) => s.name).sort(), text: `revoked ${version.version}${reason ? `: ${reason}` : ''}` };
  });
}

export async function restore(ctx: CommandContext, ref: string): Promise<number> {
  return mark(ctx, ref, 'restore', async (provider, version) => {
    if (!version.revoked) return { updated: version, servers: [], text: `${version.version} is not revoked: nothing changed` };
    const updated = await provider.updateVersionMetadata(version, { revoked: null }, ctx.signal);
    return { updated, servers: [], text: `restored ${version.version}: it can be deployed and built on again` };
  });
}

async function mark(
  ctx: CommandContext,
  ref: string,
  verb: 'revoke' | 'restore',
  change: (provider: Provider, version: ImageVersion) => Promise<{ updated: ImageVersion; servers: string[]; text: string }>,
): Promise<number> {
  const { image, version } = parseImageRef(ref);
  if (!image || !version) throw new UsageError(`${verb} takes one version: NAME@VERSION, not "${ref}"`, `e.g. provisional image ${verb} app@20260101120000 (the full name or the stamp, as \`image list\` shows)`);
  const config = await loadProject(ctx);
  const provider = await openProvider(ctx, config);
  try {
    const all = await provider.listImageVersions(ctx.signal);
    const found = all.find((v) => v.image === image && v.version === version);
    if (!found) {
      const ofImage = all.filter((v) => v.image === image).sort(byNewest);
      throw new UserFacingError(`no version ${version} of ${image}`, { exitCode: 2, hint: ofImage.length ? `versions of ${image}: ${ofImage.map((v) => v.version).join(', ')}` : 'see: provisional image list' });
    }
    const { updated, servers, text } = await change(provider, found);
    if (ctx.globals.json) ctx.reporter.printJson({ version: updated.version, revoked: updated.revoked ?? null, servers });
    else {
      ctx.reporter.print(text);
      if (verb === 'revoke') ctx.reporter.print(choicesHint(image, all.map((v) => (v.version === updated.version ? updated : v))));
    }
    return 0;
  } finally {
    await provider.close?.();
  }
}
