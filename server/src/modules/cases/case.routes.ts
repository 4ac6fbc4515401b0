import { Router } from 'express';
import { z } from 'zod';
import { CaseCreateInput, CaseReferenceInput, CaseUpdateInput, TaskCreateInput, TaskUpdateInput } from '@casebridge/shared';
import { parse } from '../../http/parse.js';
import { requireStaff } from '../../http/principal.js';
import type { CaseService } from './case.service.js';

const Params = z.object({ caseId: z.uuid() });
const LinkParams = z.object({ caseId: z.uuid(), otherId: z.uuid() });
const TaskParams = z.object({ caseId: z.uuid(), taskId: z.uuid() });

export function caseRoutes(deps: { cases: CaseService }): Router {
  const router = Router();

  router.post('/cases', async (req, res) => {
    const p = requireStaff(res);
    res.status(201).json(await deps.cases.create(p, parse(CaseCreateInput, req.body)));
  });

  router.get('/my-work', async (_req, res) => {
    res.json(await deps.cases.myWork(requireStaff(res)));
  });

  router.get('/cases/:caseId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    res.json(await deps.cases.read(p, caseId));
  });

  router.patch('/cases/:caseId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    res.json(await deps.cases.update(p, caseId, parse(CaseUpdateInput, req.body)));
  });

  router.post('/cases/:caseId/links', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    const { reference } = parse(CaseReferenceInput, req.body);
    res.json(await deps.cases.link(p, caseId, reference));
  });

  router.post('/cases/:caseId/merge', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    const { reference } = parse(CaseReferenceInput, req.body);
    res.json(await deps.cases.merge(p, caseId, reference));
  });

  router.delete('/cases/:caseId/links/:otherId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId, otherId } = parse(LinkParams, req.params);
    res.json(await deps.cases.unlink(p, caseId, otherId));
  });

  router.post('/cases/:caseId/tasks', async (req, res) => {
    const p = requireStaff(res);
    const { caseId } = parse(Params, req.params);
    res.status(201).json(await deps.cases.addTask(p, caseId, parse(TaskCreateInput, req.body)));
  });

  router.patch('/cases/:caseId/tasks/:taskId', async (req, res) => {
    const p = requireStaff(res);
    const { caseId, taskId } = parse(TaskParams, req.params);
    const { done } = parse(TaskUpdateInput, req.body);
    res.json(await deps.cases.setTaskDone(p, caseId, taskId, done));
  });

  return router;
}
