/**
 * Hetzner actions (server power, snapshots, load balancer targets, Floating IP moves): start one,
 * wait until it succeeds, polled against how long the same command took before; an action that
 * ends in error is an error with Hetzner's code.
 * https://docs.hetzner.cloud/#actions
 */
import { z } from 'zod';
import { ProviderError } from '../../core/errors.js';
import { waitExpected } from '../../core/durations.js';
import { creatingSignal } from '../../core/teardown.js';
import { TimeoutError } from '../../core/wait.js';
import { durations } from '../kit/wait.js';
import { actionSchema, type Action, type HetznerApi } from './api.js';

const actionAnswer = z.looseObject({ action: actionSchema });

export class HetznerActions {
  constructor(private readonly api: HetznerApi) {}

  /**
   * POST `path` and wait until its action succeeds; `started` gets the answer first (to track what
   * it makes). The request itself is not cut short by the signal (core/teardown.ts): a change we
   * lost track of would stay.
   */
  async run(path: string, what: string, body: unknown, timeoutMs: number, signal: AbortSignal, started?: (answer: unknown) => void): Promise<void> {
    const { body: answer } = await this.api.call('POST', path, { operation: what, body, signal: creatingSignal(), schema: actionAnswer });
    started?.(answer);
    await this.wait(answer.action, what, timeoutMs, signal);
  }

  async wait(action: Action, what: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const probe = async () => {
      const { body } = await this.api.call('GET', `/actions/${action.id}`, { operation: `wait for ${what}`, signal, schema: actionAnswer });
      return body.action.status === 'running' ? undefined : body.action;
    };
    const done = action.status === 'running'
      ? await waitExpected(probe, { what, key: `hetzner:action:${action.command}`, durations: await durations(), startedAt: performance.now(), timeoutMs, signal, maxMs: 10_000 }).catch((err) => {
          throw err instanceof TimeoutError ? new ProviderError({ provider: 'hetzner', operation: what, message: `action ${action.id} still running after ${Math.round(timeoutMs / 1000)} s` }) : err;
        })
      : action;
    if (done.status !== 'success') throw new ProviderError({ provider: 'hetzner', operation: what, code: done.error?.code, message: done.error?.message ?? `action ${action.id} failed` });
  }
}
