// Resumable model uploads: the file goes in chunks, each one PATCHed at the offset the server
// has; a dropped chunk is retried from what the server says it received.
import { ApiError, api, csrfHeaders, type Schemas, unwrap } from './api/client';

export const CHUNK_BYTES = 8 << 20;
const RETRIES = 3;

export type ModelAdded = Schemas['ModelAddedPublic'];

function sendChunk(
  uploadId: string, offset: number, chunk: Blob, headers: Record<string, string>,
  onProgress: (sent: number) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PATCH', `/api/models/uploads/${uploadId}`);
    request.withCredentials = true;
    request.setRequestHeader('Content-Type', 'application/octet-stream');
    request.setRequestHeader('Upload-Offset', String(offset));
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => onProgress(event.loaded);
    request.onload = () => {
      const body = JSON.parse(request.responseText || '{}') as { offset?: number; detail?: string; code?: string };
      if (request.status === 200 && typeof body.offset === 'number') resolve(body.offset);
      else reject(new ApiError(request.status, body.code ?? 'http_error', body.detail ?? request.statusText));
    };
    request.onerror = () => reject(new Error('the connection dropped'));
    request.send(chunk);
  });
}

export async function uploadModel(
  file: File,
  model: { name: string; tag: string; reason: string },
  onProgress: (sent: number, total: number) => void,
): Promise<ModelAdded> {
  const started = unwrap(await api.POST('/api/models/uploads', { body: { filename: file.name, size: file.size } }));
  const headers = await csrfHeaders();
  let offset = 0;
  let failures = 0;
  while (offset < file.size) {
    const chunk = file.slice(offset, offset + CHUNK_BYTES);
    try {
      offset = await sendChunk(started.id, offset, chunk, headers, (sent) => onProgress(offset + sent, file.size));
      failures = 0;
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) throw error; // bad data: no retry
      failures += 1;
      if (failures > RETRIES) throw error;
      // A moment's pause: the dropped request may still be finishing its last write (409 busy).
      await new Promise((resume) => setTimeout(resume, 500 * failures));
      const status = unwrap(await api.GET('/api/models/uploads/{upload_id}', { params: { path: { upload_id: started.id } } }));
      offset = status.offset; // resume where the server stands
    }
    onProgress(offset, file.size);
  }
  const done = await api.POST('/api/models/uploads/{upload_id}/complete', {
    params: { path: { upload_id: started.id } },
    body: { name: model.name, tag: model.tag, reason: model.reason, notes: '' },
  });
  return unwrap(done);
}

/** A model name from a file name: lowercase, letters, digits, dots, dashes. */
export function nameFromFile(filename: string): string {
  const stem = filename.replace(/\.gguf$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  return stem.replace(/^[^a-z0-9]+/, '').slice(0, 64) || 'model';
}
