import { RelayError, type ErrorCode } from '../errors/index.js';

/** One schema validation error as fastify passes it (an ajv error). */
export interface ValidationIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/**
 * Maps the first schema error of a push/start (or mix start and layout) body to the SPEC's code: the seed has a code
 * per field (40000001 no body, 40000003 no encode, 40000004 srcType, 40000006 userId, 40000007 roomId 0, 50004
 * encode; a mix member's srcType and userId as a push start's), everything else is 50002.
 */
export function startValidationError(issue: ValidationIssue | undefined, body: unknown): RelayError {
  if (!issue || body === null || body === undefined || typeof body !== 'object' || Array.isArray(body))
    return new RelayError(40000001);
  const field =
    issue.keyword === 'required' ? `${issue.instancePath}/${String(issue.params.missingProperty)}` : issue.instancePath;
  const detail = `${field || 'body'} ${issue.message ?? 'is invalid'}`;
  const roomId = (body as { roomId?: unknown }).roomId;
  // a mix member's userId and srcType are coded as a push start's (`/members/2/userId` → `/userId`)
  const key = field.replace(/^\/members\/\d+(?=\/(?:userId|srcType)$)/, '');
  const byField: Record<string, ErrorCode> = {
    '/userId': 40000006,
    '/srcType': 40000004,
    '/option': 40000003,
    '/option/encode': issue.keyword === 'required' ? 40000003 : 50004,
    '/roomId': roomId === 0 || roomId === '0' ? 40000007 : 50002,
  };
  const code = byField[key] ?? 50002;
  if (issue.keyword === 'additionalProperties')
    return new RelayError(50002, `unknown field ${field}/${String(issue.params.additionalProperty)}`);
  if (code === 40000003 && field === '/option' && issue.keyword !== 'required')
    return new RelayError(50002, `option must be an object: ${detail}`);
  return new RelayError(code, `${new RelayError(code).message}: ${detail}`);
}

/** Any other route: the first schema error as 50002. */
export function genericValidationError(
  issue: ValidationIssue | undefined,
  body: unknown,
  hasBodySchema: boolean,
): RelayError {
  if (hasBodySchema && (body === null || body === undefined)) return new RelayError(40000001);
  const field =
    issue?.keyword === 'required'
      ? `${issue.instancePath}/${String(issue.params.missingProperty)}`
      : issue?.instancePath;
  return new RelayError(
    50002,
    `input parameter validation failed: ${field || 'request'} ${issue?.message ?? 'is invalid'}`,
  );
}
