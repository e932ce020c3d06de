// Copies the web UI's static files (HTML, CSS) next to its compiled scripts in dist/.
import { cpSync, existsSync } from 'node:fs';

if (existsSync('web/public')) cpSync('web/public', 'dist/web/public', { recursive: true });
