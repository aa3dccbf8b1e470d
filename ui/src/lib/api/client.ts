// The typed API client, generated from the server's OpenAPI document (see `make api-client`).
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Flag = Schemas['FlagPublic'];
export type AuditEntry = Schemas['AuditEntryPublic'];
export type Overview = Schemas['OverviewPublic'];
export type OnboardingState = Schemas['OnboardingPublic'];
export type Admin = Schemas['AdminPublic'];
export type Model = Schemas['ModelPublic'];
export type CatalogSync = Schemas['CatalogSyncPublic'];
export type Incident = Schemas['IncidentPublic'];
export type Migration = Schemas['MigrationPublic'];
export type MigrationOrder = Schemas['MigrationCreate'];
export type Automation = Schemas['AutomationPublic'];
export type SmtpSettings = Schemas['SmtpPublic'];
export type Recipient = Schemas['RecipientPublic'];

/** An error answer of the API: a sentence for people and a stable code for programs. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(detail);
  }
}

let csrfToken: string | null = null;

/** The CSRF token of this browser's session; sent on every state-changing request. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** The header a state-changing request must carry (for requests made without `api`). */
export async function csrfHeaders(): Promise<Record<string, string>> {
  if (!csrfToken) {
    const response = await fetch('/api/auth/csrf', { credentials: 'same-origin' });
    csrfToken = ((await response.json()) as { csrf_token: string }).csrf_token;
  }
  return { 'X-CSRF-Token': csrfToken };
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const csrf: Middleware = {
  async onRequest({ request }) {
    if (UNSAFE.has(request.method)) {
      for (const [name, value] of Object.entries(await csrfHeaders())) {
        request.headers.set(name, value);
      }
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The data of an answer, or an `ApiError` built from its `{detail, code}` body. */
export function unwrap<T>(answer: Answer<T>): T {
  if (answer.error !== undefined || !answer.response.ok) {
    const body = (answer.error ?? {}) as {
      detail?: unknown;
      code?: string;
      errors?: { field: string; message: string }[] | null;
    };
    const fields: Record<string, string> = {};
    for (const problem of body.errors ?? []) fields[problem.field] = problem.message;
    const detail = typeof body.detail === 'string' ? body.detail : answer.response.statusText;
    throw new ApiError(answer.response.status, body.code ?? 'http_error', detail, fields);
  }
  return answer.data as T;
}

/** What to show a person when a request failed: the API's sentence, or the error's message. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * An error placed in a form: the API's per-field problems, else its sentence under the field its
 * code is about (`byCode`), else under the form itself (key `''`).
 */
export function fieldErrors(error: unknown, byCode: Record<string, string> = {}): Record<string, string> {
  if (!(error instanceof ApiError)) return { '': errorMessage(error) };
  if (Object.keys(error.fields).length) return error.fields;
  return { [byCode[error.code] ?? '']: error.detail };
}
