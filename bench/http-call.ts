import { request, type Agent } from 'node:http';

/** One GET with a bearer token over a keep-alive agent; rejects unless the answer is 200 (shared by benches). */
export function call(agent: Agent, url: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
