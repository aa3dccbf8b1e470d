import { describe, expect, it } from 'vitest';
import { ApiError, fieldErrors } from './client';

describe('fieldErrors', () => {
  it("keeps the API's per-field problems", () => {
    const error = new ApiError(422, 'validation_error', 'name: too short', { name: 'too short' });
    expect(fieldErrors(error, { validation_error: 'tag' })).toEqual({ name: 'too short' });
  });

  it('puts a sentence under the field its code is about, else under the form', () => {
    const busy = new ApiError(409, 'no_worker_available', 'only 0 online worker(s)');
    expect(fieldErrors(busy, { no_worker_available: 'count' })).toEqual({ count: 'only 0 online worker(s)' });
    expect(fieldErrors(busy)).toEqual({ '': 'only 0 online worker(s)' });
    expect(fieldErrors(new Error('offline'))).toEqual({ '': 'offline' });
  });
});
