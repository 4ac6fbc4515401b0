import express, { Router } from 'express';
import { z } from 'zod';
import { MAX_ATTACHMENT_BYTES } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requirePrincipal } from '../../http/principal.js';
import type { AttachmentService } from './attachment.service.js';

const ConvParams = z.object({ conversationId: z.uuid() });
const IdParams = z.object({ attachmentId: z.uuid() });

export function attachmentRoutes(deps: { attachments: AttachmentService }): Router {
  const router = Router();

  // The file is the raw request body (any Content-Type but JSON); its name comes URL-encoded in x-filename.
  router.post(
    '/conversations/:conversationId/attachments',
    express.raw({ type: () => true, limit: MAX_ATTACHMENT_BYTES }),
    async (req, res) => {
      const p = requirePrincipal(res);
      const { conversationId } = parse(ConvParams, req.params);
      const header = req.headers['x-filename'];
      let name: string | undefined;
      try {
        name = typeof header === 'string' ? decodeURIComponent(header) : undefined;
      } catch {
        name = undefined;
      }
      const bytes = Buffer.isBuffer(req.body) ? new Uint8Array(req.body) : new Uint8Array();
      res.status(201).json(await deps.attachments.upload(p, conversationId, name, bytes));
    },
  );

  router.get('/attachments/:attachmentId', async (req, res) => {
    const p = requirePrincipal(res);
    const { attachmentId } = parse(IdParams, req.params);
    const { ref, data } = await deps.attachments.download(p, attachmentId);
    res.setHeader('Content-Type', ref.contentType);
    // Always a download, in a sandbox: an uploaded file can never run as a page of ours.
    res.setHeader('Content-Disposition', `attachment; filename="${ref.filename.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(ref.filename)}`);
    res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'private, no-store');
    res.end(Buffer.from(data));
  });

  return router;
}
