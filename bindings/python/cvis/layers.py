"""Layer descriptions for cvis.Model.sequential, named and ordered as Keras
names them:

    model = cvis.Model.sequential((128, 128, 3), [
        cvis.layers.Conv2D(8, 7, activation="relu"),
        cvis.layers.MaxPooling2D(2),
        cvis.layers.Flatten(),
        cvis.layers.Dense(3, activation="softmax"),
    ])

Each description adds one layer fed by the one before it (build(model)
returns the new layer's index).  Graphs with branches (add, multiply,
concat) are built with the Model methods directly.
"""


class _Description:
    """A layer to add; subclasses say which builder and which arguments."""

    def build(self, model):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()) if kv[1] is not None)
        return "%s(%s)" % (type(self).__name__, args)


class Conv2D(_Description):
    """A 2-D convolution: filters of kernel_size (an int or (kh, kw)),
    strides, "valid" or "same" padding, dilation, groups, an activation."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 dilation_rate=1, groups=1, use_bias=True, name=None):
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.activation, self.dilation_rate = padding, activation, dilation_rate
        self.groups, self.use_bias, self.name = groups, use_bias, name

    def build(self, model):
        return model.conv2d(self.filters, self.kernel_size, strides=self.strides,
                            padding=self.padding, activation=self.activation, name=self.name,
                            dilation=self.dilation_rate, groups=self.groups,
                            use_bias=self.use_bias)


class Dense(_Description):
    """A fully connected layer of `units` outputs over the last axis."""

    def __init__(self, units, activation=None, name=None):
        self.units, self.activation, self.name = units, activation, name

    def build(self, model):
        return model.dense(self.units, activation=self.activation, name=self.name)


class Activation(_Description):
    """An activation on its own ("relu", "softmax", ...)."""

    def __init__(self, activation, name=None):
        self.activation, self.name = activation, name

    def build(self, model):
        return model.activation(self.activation, name=self.name)


class LeakyReLU(_Description):
    """max(x, alpha * x); Keras's default slope 0.3."""

    def __init__(self, alpha=0.3, name=None):
        self.alpha, self.name = alpha, name

    def build(self, model):
        return model.leaky_relu(self.alpha, name=self.name)


class MaxPooling2D(_Description):
    """Max pooling over pool_size windows (strides default to pool_size)."""
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        self.pool_size, self.strides, self.padding, self.name = pool_size, strides, padding, name

    def build(self, model):
        return model.pool2d(self.kind, self.pool_size, strides=self.strides,
                            padding=self.padding, name=self.name)


class AveragePooling2D(MaxPooling2D):
    """Average pooling over pool_size windows."""
    kind = "avg"


class GlobalAveragePooling2D(_Description):
    """Mean over height and width: (B,H,W,C) -> (B,C)."""

    def __init__(self, name=None):
        self.name = name

    def build(self, model):
        return model.global_avg_pool(name=self.name)


class BatchNormalization(_Description):
    """Inference batch normalization over the channels (starts as identity)."""

    def __init__(self, epsilon=1e-3, name=None):
        self.epsilon, self.name = epsilon, name

    def build(self, model):
        return model.batch_norm(self.epsilon, name=self.name)


class Flatten(_Description):
    def __init__(self, name=None):
        self.name = name

    def build(self, model):
        return model.flatten(name=self.name)


class Dropout(_Description):
    """Identity at inference; kept so that layer names and indices match."""

    def __init__(self, rate, name=None):
        self.rate, self.name = rate, name

    def build(self, model):
        return model.dropout(self.rate, name=self.name)


class ZeroPadding2D(_Description):
    """Zeros around the image: padding = p, (ph, pw) or ((top, bottom),
    (left, right)), as Keras takes it."""

    def __init__(self, padding=1, name=None):
        self.padding, self.name = padding, name

    def build(self, model):
        p = self.padding
        if isinstance(p, int):
            top = bottom = left = right = p
        elif isinstance(p[0], int):
            top = bottom = p[0]
            left = right = p[1]
        else:
            (top, bottom), (left, right) = p
        return model.zero_padding(top, bottom, left, right, name=self.name)
