"""Exports reference models to ONNX in a separate process, so that the
slow exports (vgg11_bn, alexnet: hundreds of megabytes of weights) overlap
with the tests.  Arguments: a directory, then jobs name:opset:dynamic.
Each finished file gets a ".done" marker (or ".failed" with the error)."""
import os
import sys
import traceback
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_models import SPECS, build, export  # noqa: E402


def main(argv):
    warnings.simplefilter("ignore")
    workdir = argv[1]
    models = {}
    for job in argv[2:]:
        name, opset, dynamic = job.split(":")
        path = os.path.join(workdir, job_file(name, int(opset), dynamic == "1"))
        try:
            if name not in models:  # one build for every opset
                models.clear()
                models[name] = build(name)
            export(models[name], SPECS[name][0], path + ".part", int(opset), dynamic == "1")
            os.replace(path + ".part", path)
            open(path + ".done", "w").close()
        except Exception:  # the test process exports it itself
            with open(path + ".failed", "w") as f:
                f.write(traceback.format_exc())


def job_file(name, opset, dynamic):
    return "%s_%d%s.onnx" % (name, opset, "_dyn" if dynamic else "")


if __name__ == "__main__":
    main(sys.argv)
