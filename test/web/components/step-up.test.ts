// @vitest-environment happy-dom
/**
 * The "confirm it's you" prompt itself (`web/src/components/step-up.ts`), as the security page
 * uses it: the page shows the answer's problem as it is, so a Cancel must hand back words about
 * the Cancel, not the server's refusal (which asks to re-authenticate and names API routes).
 */
import { describe, expect, it, vi } from 'vitest';
import type { ApiResult } from '../../../web/src/api.js';
import { createStepUp } from '../../../web/src/components/step-up.js';
import { problemMessage } from '../../../web/src/problem.js';
import type { MfaStatus } from '../../../web/src/security-api.js';
import { problemOf } from '../fixtures.js';

const STEP_UP = problemOf(
  401,
  'STEP_UP_REQUIRED',
  'This change needs a sign-in with your second factor. Re-authenticate at POST /auth/reauthenticate …',
);

const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('step-up prompt', () => {
  it('Cancel answers the first refusal with a message about the Cancel, marked cancelled, and runs nothing more', async () => {
    const reauthenticate = vi.fn(
      async (): Promise<ApiResult<unknown>> => ({ ok: true, status: 204, data: undefined }),
    );
    const stepUp = createStepUp({
      actions: { reauthenticate, reauthenticateWithPasskey: vi.fn() },
      factors: async (): Promise<ApiResult<MfaStatus>> => ({
        ok: true,
        status: 200,
        data: { totp: 'off', recovery_codes_left: 0, passkeys: 0 },
      }),
      until: new AbortController().signal,
    });
    document.body.append(stepUp.element);
    const run = vi.fn(async (): Promise<ApiResult<unknown>> => ({ ok: false, problem: STEP_UP }));
    const pending = stepUp.sensitive(run);
    await flush();
    expect(stepUp.element.hidden).toBe(false);
    stepUp.element.querySelector<HTMLButtonElement>('[data-testid="step-up-cancel"]')?.click();
    const result = await pending;
    expect(run).toHaveBeenCalledOnce();
    expect(reauthenticate).not.toHaveBeenCalled();
    expect(result).toMatchObject({ ok: false, cancelled: true, problem: { code: 'STEP_UP_REQUIRED' } });
    if (result.ok) throw new Error('expected a refusal');
    const shown = problemMessage(result.problem);
    expect(shown).toMatch(/Nothing was changed/);
    expect(shown).not.toMatch(/POST \/auth/);
  });
});
