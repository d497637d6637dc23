import type { FaultInjector } from './faults';
import { Exchange, send, sendJson } from './http';
import type { CallRecorder } from './record';
import type { EmulatorState } from './state';

/** Prefix of the emulator's own control endpoints (no auth, never recorded or faulted). */
export const ADMIN_PREFIX = '/_emulator/';

/** What the admin endpoints control. */
export interface AdminTargets {
  recorder: CallRecorder;
  faults: FaultInjector;
  state: EmulatorState;
}

/** Handles a request under `/_emulator/`. */
export function handleAdmin(ex: Exchange, targets: AdminTargets): void {
  const method = ex.req.method ?? 'GET';
  const route = `${method} ${ex.url.pathname.replace(/\/+$/, '')}`;
  switch (route) {
    case 'GET /_emulator/health':
      sendJson(ex, 200, { status: 'ok' });
      return;
    case 'GET /_emulator/calls':
      sendJson(ex, 200, targets.recorder.calls());
      return;
    case 'DELETE /_emulator/calls':
      targets.recorder.reset();
      send(ex, 204, {}, '');
      return;
    case 'GET /_emulator/faults':
      sendJson(ex, 200, targets.faults.get());
      return;
    case 'PUT /_emulator/faults': {
      let config: unknown;
      try {
        config = JSON.parse(ex.body || 'null');
      } catch {
        sendJson(ex, 400, {
          error: 'The body must be a FaultConfig JSON object.',
        });
        return;
      }
      try {
        targets.faults.set(config as never);
      } catch (error) {
        sendJson(ex, 400, { error: (error as Error).message });
        return;
      }
      sendJson(ex, 200, targets.faults.get());
      return;
    }
    case 'DELETE /_emulator/faults':
      targets.faults.clear();
      send(ex, 204, {}, '');
      return;
    case 'POST /_emulator/access-tokens/expire':
      targets.state.expireAccessTokens();
      send(ex, 204, {}, '');
      return;
    case 'GET /_emulator/issued-tokens':
      // for the secret scans of tests that run the emulator as a process
      sendJson(ex, 200, targets.state.issuedTokens());
      return;
    case 'POST /_emulator/workspaces/rename': {
      // { "workspace": "<slug or braced uuid>", "slug": "<new slug>" }
      try {
        const body = JSON.parse(ex.body || 'null');
        if (
          typeof body?.workspace !== 'string' ||
          typeof body?.slug !== 'string'
        ) {
          throw new Error(
            'The body must be { "workspace": "<slug or {uuid}>", "slug": "<new slug>" }.',
          );
        }
        targets.state.renameWorkspace(body.workspace, body.slug);
      } catch (error) {
        sendJson(ex, 400, { error: (error as Error).message });
        return;
      }
      send(ex, 204, {}, '');
      return;
    }
    case 'POST /_emulator/refresh-tokens/revoke':
      targets.state.revokeRefreshTokens();
      send(ex, 204, {}, '');
      return;
    default:
      sendJson(ex, 404, { error: `Unknown emulator endpoint: ${route}` });
  }
}
