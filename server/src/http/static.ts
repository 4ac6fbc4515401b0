import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router } from 'express';
import { AppError } from '../errors.js';

/** The origins allowed to frame the widget for an agency key (its own list plus ours). */
export type FrameAncestors = (agencyKey: string | undefined) => Promise<string[]>;

export interface StaticDirs {
  /** widget/dist: widget.js (the loader) and app/ (the chat iframe). */
  widgetDist: string;
  /** widget/demo: the sample agency page. */
  demoDir: string;
}

const WIDGET_APP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** Built widget assets and the demo agency page. */
export function staticRoutes(dirs: StaticDirs, frameAncestors: FrameAncestors): Router {
  const router = Router();
  // The chat iframe is the one page other sites may frame: only the origins its agency listed.
  router.use('/widget', async (req, res, next) => {
    const key = typeof req.query.agency === 'string' ? req.query.agency : undefined;
    const ancestors = await frameAncestors(key);
    res.removeHeader('X-Frame-Options');
    res.setHeader('Content-Security-Policy', `${WIDGET_APP_CSP}; frame-ancestors ${ancestors.join(' ') || "'none'"}`);
    next();
  });
  router.get('/widget.js', (_req, res, next) => {
    const file = join(dirs.widgetDist, 'widget.js');
    if (!existsSync(file)) return next();
    res.setHeader('Cache-Control', 'public, max-age=300');
    // Agency sites on other origins load this script; everything else of ours stays same-origin.
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.sendFile(file);
  });
  router.use(
    '/widget',
    express.static(join(dirs.widgetDist, 'app'), {
      index: 'index.html',
      setHeaders: (res, file) => {
        // The page's frame-ancestors follow the agency's settings, so it is never cached; assets are content-hashed.
        res.setHeader('Cache-Control', file.endsWith('.html') ? 'no-store' : 'public, max-age=31536000, immutable');
      },
    }),
  );
  router.get('/demo', (_req, res, next) => {
    const file = join(dirs.demoDir, 'index.html');
    if (!existsSync(file)) return next();
    res.sendFile(file);
  });
  router.use('/demo', express.static(dirs.demoDir));
  return router;
}

/** Paths no module serves: say so plainly. */
export function placeholderRoutes(): Router {
  const router = Router();
  // Twilio's SMS and voice webhooks are served by their modules; anything else under this path does not exist.
  router.all('/webhooks/twilio/*path', (_req, _res) => {
    throw new AppError('NOT_FOUND', 'No such Twilio webhook');
  });
  router.get('/', (_req, res) => res.redirect(302, '/console'));
  // Browsers ask for /favicon.ico on their own; ours is an SVG served by the web app.
  router.get('/favicon.ico', (_req, res) => res.redirect(301, '/favicon.svg'));
  return router;
}
