// Precompress the built files so the server can send them gzipped without work per request.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const root = process.argv[2];
const compressible = /\.(js|css|html|svg|json)$/;
let total = 0;
let initialJs = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (compressible.test(name)) {
      const gz = gzipSync(readFileSync(path), { level: 9 });
      writeFileSync(`${path}.gz`, gz);
      total += gz.length;
      if (name.endsWith('.js')) initialJs += gz.length;
    }
  }
}
walk(root);
console.log(`compressed: ${(total / 1024).toFixed(1)} KB gzip in all, JavaScript ${(initialJs / 1024).toFixed(1)} KB gzip`);
