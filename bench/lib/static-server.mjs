// A plain HTTPS file server for the download stage at sizes the emulator cannot serve (it builds a results file as one
// string, which V8 caps at ~512 MiB: ~4M lines). Serves FILE at /results.ndjson like storage does: octet-stream, with
// content-length. Prints `listening on <url>`.
//   node bench/lib/static-server.mjs CERT KEY FILE
import { createReadStream, readFileSync, statSync } from 'node:fs';
import https from 'node:https';

const [cert, key, file] = process.argv.slice(2);
const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  if (req.url !== '/results.ndjson') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size });
  createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on https://127.0.0.1:${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
