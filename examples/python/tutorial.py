"""The tutorial, step by step, in Python with libcvis (the same steps as
examples/tutorial.c, and the same results): filters, feature maps,
activation maximization, then every method on three images.

    python3 examples/python/tutorial.py [-w WEIGHTS.npz] [-o DIR] [--steps N]

Every result is written as a .npy file."""
import argparse
import os

import numpy as np

import cvis


def create_model():
    """The tutorial's create_model(), with libcvis's builders."""
    model = cvis.Model(128, 128, 3)
    model.conv2d(8, 7, activation="relu")
    model.conv2d(8, 5, activation="relu")
    model.conv2d(8, 3, activation="relu")
    model.flatten()
    model.dense(128, activation="relu")
    model.dense(3, activation="softmax")
    return model


def make_images():
    """The three images of examples/tutorial.c: a disc, a square and a
    triangle on noise, drawn with the same generator."""
    x = np.zeros((3, 128, 128, 3), np.float32)
    s = 7
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    dy, dx = yy - 64.0, xx - 64.0
    inside = [dx * dx + dy * dy < 30 * 30,
              (np.abs(dx) < 27) & (np.abs(dy) < 27),
              (dy > -30) & (dy < 30) & (np.abs(dx) < (dy + 30) * np.float32(0.6))]
    for b in range(3):
        noise = np.zeros((128, 128, 3), np.float32)
        for y in range(128):
            for xc in range(128):
                for c in range(3):
                    s = (s * 1103515245 + 12345) & 0xFFFFFFFF
                    noise[y, xc, c] = np.float32(((s >> 9) & 0xFF) / 255.0) * np.float32(0.3)
        color = np.where(np.arange(3) == b, np.float32(0.9), np.float32(0.2))
        x[b] = np.where(inside[b][..., None], color[None, None, :], noise)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-w", "--weights")
    ap.add_argument("-o", "--out", default="tutorial_out_py")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def save(name, array):
        np.save(os.path.join(args.out, name + ".npy"), array)

    model = create_model()
    if args.weights:
        model.load_weights(args.weights)

    print("== Filters of the convolutional layers")
    for layer in model.layers:
        print("[*] layer:", layer.name, "(%s)" % layer.type, end=" ")
        if "conv" not in layer.name:
            print("No")
            continue
        filters_weights, biases_weights = model.layer(layer.name).weights()
        print("\n[**] id: {}, layer.name: {}, filters_weights.shape: {}, biases_weights.shape: {}"
              .format(layer.index, layer.name, filters_weights.shape, biases_weights.shape))
        print("[**] layer.output.shape: {}".format((None,) + layer.output_shape))
        save("filters_" + layer.name, cvis.normalized_filters(model, layer.name))

    x = make_images()
    print("== Feature maps")
    feature_maps_1 = model.submodel([0]).predict(x[:1])
    print("[*] feature_maps_1.shape:", feature_maps_1.shape)
    save("feature_maps_1", feature_maps_1)
    for k, fm in enumerate(model.submodel([0, 1, 2]).predict(x[:1])):
        print("[*] feature_maps_2[%d].shape:" % k, fm.shape)
        save("feature_maps_2_%d" % k, fm)

    print("== Activation maximization: filter 7 of layer 2")
    activations = cvis.activation_maximization(
        model, cvis.CategoricalScore(7), layer=2, steps=args.steps,
        input_modifiers=[cvis.Jitter(jitter=16), cvis.Rotate2D(degree=1)],
        regularizers=[cvis.TotalVariation2D(weight=1.0), cvis.Norm(weight=0.3, p=1)],
        optimizer=cvis.Adam(1.0, 0.999), callbacks=[cvis.Progress()])
    print("[*] activations.shape:", activations.shape)
    save("activations", activations)

    print("== Why: three images, classes 0, 1, 2")
    score = cvis.CategoricalScore(list(range(x.shape[0])))
    results = {
        "vanilla_saliency": cvis.saliency(model, x, score),
        "smoothgrad": cvis.saliency(model, x, score, smooth_samples=20, smooth_noise=0.20),
        "gradcam": cvis.gradcam(model, x, score, layer=-1),
        "gradcam_plus_plus": cvis.gradcam_plus_plus(model, x, score, layer=-1),
        "scorecam": cvis.scorecam(model, x, score, layer=-1),
        "faster_scorecam": cvis.scorecam(model, x, score, layer=-1, max_n=8),
        "layercam": cvis.layercam(model, x, score, layer=-1),
    }
    for name, maps in results.items():
        print("[*] %s:" % name, maps.shape)
        save(name, maps)
    print("done: every result is a .npy file under %s/" % args.out)


if __name__ == "__main__":
    main()
