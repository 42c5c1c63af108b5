import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface NodeRequestInit {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | AsyncIterable<Uint8Array> | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface NodeResponse {
  readonly status: number;
  readonly headers: Headers;
  /** The body as a Node stream; read it to the end or destroy it. */
  readonly body: IncomingMessage;
  /** The whole answer as a fetch `Response` (for small JSON and problem bodies). */
  toResponse(): Promise<Response>;
}

/**
 * Bulk bytes (upload chunks, downloads) over node:http(s) directly. fetch moves every byte through web streams
 * and costs several times the CPU per byte, which on a small machine is CPU the server does not get.
 * Redirects are never followed (node:http does not follow them).
 */
export function nodeRequest(url: URL, init: NodeRequestInit): Promise<NodeResponse> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = send(url, {
      method: init.method,
      headers: init.headers,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    req.on('response', (res) => {
      settled = true;
      resolve({
        status: res.statusCode ?? 0,
        headers: toHeaders(res.headers),
        body: res,
        toResponse: async () => {
          const chunks: Buffer[] = [];
          for await (const chunk of res) chunks.push(chunk as Buffer);
          const status = res.statusCode ?? 500;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          return new Response(body, { status, headers: toHeaders(res.headers) });
        },
      });
    });
    req.on('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    pump(req, init.body, () => settled).catch((err: unknown) => {
      if (settled) return;
      settled = true;
      req.destroy(err instanceof Error ? err : new Error(String(err)));
      reject(err);
    });
  });
}

async function pump(
  req: ReturnType<typeof httpRequest>,
  body: NodeRequestInit['body'],
  answered: () => boolean,
): Promise<void> {
  if (body === undefined) {
    req.end();
    return;
  }
  if (body instanceof Uint8Array) {
    req.end(body);
    return;
  }
  const iterator = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      // An early answer (an error before the body was read) ends the upload: stop reading the source.
      if (req.destroyed || answered()) return;
      const next = await iterator.next();
      if (next.done) break;
      if (!req.write(next.value)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            req.off('drain', done);
            req.off('close', done);
            resolve();
          };
          req.on('drain', done);
          req.on('close', done);
        });
      }
    }
    req.end();
  } finally {
    // Closes the files behind the body even when the request ended early.
    await iterator.return?.();
  }
}

function toHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}
