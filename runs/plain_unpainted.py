"""Re-measure only the unpainted plain CNN of `steerable3d cosmology --task density --train-boxes N` (same
seeds, boxes, test fields and training as cosmology.run), to get its per-bin r(k) beside the painted runs.
Usage: PYTHONPATH=. python runs/plain_unpainted.py N OUT.json"""
import sys

import numpy as np
import torch

from steerable3d.workflows import cosmology as c

torch.set_num_threads(1)
n, out = int(sys.argv[1]), sys.argv[2]
seed = 0
task = c.FieldTask("density", 24, 96.0)
test = task.sample(8, torch.Generator().manual_seed(10_000 + seed))
boxes = task.sample(n, torch.Generator().manual_seed(20_000 + seed))
name = "plain CNN (same graph)"
torch.manual_seed(seed)
model = c.build_models(task)[name]()
losses, seconds = c.train_model(model, task, 600, seed=seed, boxes=boxes)
result = c.Result("density", name, sum(p.numel() for p in model.parameters()), seconds, float(np.mean(losses[-20:])),
                  c.evaluate(model, task, test), c.grid_error(model, task, test[0][:2]))
c.save_results([result], out)
print(c.format_table([result]))
