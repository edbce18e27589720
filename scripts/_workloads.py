"""The cases scripts/benchmark.py and scripts/profile_layers.py time, built alike on this engine and in
PyTorch: VGG16 (forward, saliency map, a class-model step) and ResNet-50 with the same random weights,
and a training step of the shapes network. Each function imports its engine when called, so that a
worker process sets its threads before NumPy or PyTorch loads."""


# ------------------------------------------------------------------------------------------------ ours
def ours_vgg16(device):
    from models import vgg
    model = vgg.build("vgg16", seed=0).eval()
    return model.to(device) if device != "cpu" else model


def ours_cases(model, batch, device):
    import numpy as np

    import minigrad as mg
    import saliency
    from saliency.class_model import PRESETS
    PAPER = PRESETS["paper"]                        # plain SGD on the pixels, as the PyTorch side does
    x = mg.to_device(np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32), device)
    targets = list(range(batch))

    def forward():
        with mg.no_grad():
            model(mg.Tensor(x))

    def saliency_run():
        saliency.saliency_map(saliency.input_gradient(model, x, targets))

    def class_model_step():
        saliency.class_model(model, 0, **dict(PAPER, steps=1))          # one step of the paper's recipe

    return {"forward": forward, "saliency": saliency_run, "class-model": class_model_step}


def ours_resnet50(device):
    from models import resnet
    model = resnet.build("resnet50", seed=0).eval()
    return model.to(device) if device != "cpu" else model


def shapes_config():
    from models import vgg
    return vgg.VGGConfig("shapes_vgg", [[16, 16], [32, 32], [64, 64]], fc=[128], num_classes=10,
                         input_size=(64, 64), dropout=0.3)


def ours_train_step(device):
    import numpy as np

    import minigrad as mg
    from minigrad import functional as F
    from models import vgg
    model = vgg.build(shapes_config(), seed=0)
    model = model.to(device) if device != "cpu" else model
    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = mg.to_device(rng.standard_normal((64, 3, 64, 64), dtype=np.float32), device)
    y = mg.to_device(rng.integers(0, 10, 64), device)

    def step():
        loss = F.cross_entropy(model(mg.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# ------------------------------------------------------------------------------------------------ torch
def torch_vgg16(device):
    """torchvision's VGG16 layout, with our model's weights (same seed) copied in."""
    import torch

    from minigrad.backend import to_numpy
    ours = ours_vgg16("cpu")
    layers, c = [], 3
    for block in ours.config.blocks:
        for width in block:
            layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = width
        layers.append(torch.nn.MaxPool2d(2, 2))
    head = [torch.nn.Flatten(), torch.nn.Linear(512 * 7 * 7, 4096), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(4096, 1000)]
    net = torch.nn.Sequential(*layers, *head)
    mods = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for m, name in zip(mods, ours.weight_layers):
            layer = getattr(ours, name)
            m.weight.copy_(torch.from_numpy(to_numpy(layer.weight.data)))
            m.bias.copy_(torch.from_numpy(to_numpy(layer.bias.data)))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to("cuda" if device == "gpu" else "cpu")


def torch_resnet50(device):
    """torchvision's ResNet-50 (its own module when torchvision is installed, else the same layout
    from models/torch_reference.py), with our model's weights and BN statistics (same seed) loaded
    key for key. Returns (net, where it came from)."""
    import numpy as np
    import torch
    try:
        from torchvision.models import resnet50
        net, source = resnet50(), "torchvision.models.resnet50"
    except ImportError:
        from models import torch_reference
        net, source = torch_reference.resnet(*torch_reference.DEPTHS["resnet50"]), \
            "torchvision's layout written in models/torch_reference.py (no torchvision)"
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours_resnet50("cpu").state_dict().items()}
    net.load_state_dict(state)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval().to("cuda" if device == "gpu" else "cpu"), source


def torch_cases(net, batch, device):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    x = torch.randn(batch, 3, 224, 224, device=dev)
    targets = torch.arange(batch, device=dev)

    def forward():
        with torch.no_grad():
            net(x)

    def saliency_run():
        xi = x.clone().requires_grad_(True)
        net(xi)[torch.arange(batch), targets].sum().backward()
        xi.grad.abs().amax(dim=1)

    def class_model_step():
        img = torch.zeros(1, 3, 224, 224, device=dev, requires_grad=True)
        net(img)[0, 0].backward()
        with torch.no_grad():
            img += 1.0 * (img.grad - 2e-3 * img)

    return {"forward": forward, "saliency": saliency_run, "class-model": class_model_step}


def torch_train_step(device):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    torch.manual_seed(0)
    layers, c = [], 3
    for block in shapes_config().blocks:
        for width in block:
            layers += [torch.nn.Conv2d(c, width, 3, padding=1), torch.nn.ReLU()]
            c = width
        layers.append(torch.nn.MaxPool2d(2))
    net = torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 128), torch.nn.ReLU(),
                              torch.nn.Dropout(0.3), torch.nn.Linear(128, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(64, 3, 64, 64, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step
