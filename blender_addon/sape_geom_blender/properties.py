"""Scene settings shown in the SAPE panel (``scene.sape_geom``)."""

from __future__ import annotations

import json

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

#: Mirrors sape_geom's names; the add-on cannot import sape_geom (it runs in any Blender Python).
PRESETS = (
    ("fast", "Fast", "Tuned for a CPU: 1200 steps, coarser SAPE grid"),
    ("quality", "Quality", "The paper's protocol (100k steps); needs a GPU"),
)
ENCODINGS = (
    ("sape", "SAPE", "Fourier features with a spatially adaptive progressive mask"),
    ("progressive", "Progressive", "Fourier features with a global progressive mask"),
    ("ff", "Fourier features", "Random Fourier features, no mask"),
    ("pe", "Positional", "NeRF positional encoding"),
    ("rbf", "RBF", "Radial basis functions"),
    ("prbf", "Periodic RBF", "Periodic radial basis functions"),
    ("none", "None", "Raw coordinates"),
    ("siren", "SIREN", "Sine-activated network"),
)
DEVICES = (
    ("auto", "Auto", "CUDA or Apple Metal when available, else CPU"),
    ("cpu", "CPU", ""),
    ("cuda", "CUDA", ""),
    ("mps", "Apple Metal", ""),
)


def _is_curve(_self, obj):
    return obj.type == "CURVE"


class SAPE_Settings(bpy.types.PropertyGroup):
    # ---------------------------------------------------------------- fit surface
    preset: EnumProperty(name="Preset", items=PRESETS, default="fast")
    encoding: EnumProperty(name="Encoding", items=ENCODINGS, default="sape")
    resolution: IntProperty(name="Resolution", description="Marching-cubes grid size of the result",
                            default=128, min=16, max=1024)
    budget: EnumProperty(
        name="Budget",
        items=(("PRESET", "Preset", "The preset's own number of steps"),
               ("STEPS", "Steps", "A fixed number of training steps"),
               ("TIME", "Time", "Train for at most this many seconds")),
        default="PRESET",
    )
    steps: IntProperty(name="Steps", default=2000, min=1, soft_max=100000)
    time_budget: FloatProperty(name="Seconds", default=60.0, min=1.0, soft_max=3600.0, subtype="TIME_ABSOLUTE")
    device: EnumProperty(name="Device", items=DEVICES, default="auto")
    live_preview: BoolProperty(name="Live Preview", description="Show a coarse mesh while training", default=True)
    preview_every: FloatProperty(name="Preview Every", default=3.0, min=0.5, soft_max=60.0, subtype="TIME_ABSOLUTE")
    extra_settings: StringProperty(
        name="Extra Settings",
        description="JSON object merged into the worker job's settings (advanced; e.g. "
        '{"config": {"train.batch_size": 2000}})',
        default="",
    )

    # ---------------------------------------------------------------- deform curve
    target_kind: EnumProperty(name="Target", items=(("OBJECT", "Curve", "A curve object"),
                                                    ("IMAGE", "Image", "A silhouette image file")),
                              default="OBJECT")
    target_object: PointerProperty(name="Target Curve", type=bpy.types.Object, poll=_is_curve)
    target_image: StringProperty(name="Image", subtype="FILE_PATH", default="")
    source_kind: EnumProperty(name="Source", items=(("CIRCLE", "Circle", "Start from a circle"),
                                                    ("OBJECT", "Curve", "Start from a curve object")),
                              default="CIRCLE")
    source_object: PointerProperty(name="Source Curve", type=bpy.types.Object, poll=_is_curve)
    deform_steps: IntProperty(name="Steps", default=1000, min=1, soft_max=20000)
    animate: BoolProperty(name="Animate", description="Key the optimisation as an animation", default=False)
    animation_mode: EnumProperty(name="Keys", items=(("SHAPE_KEYS", "Shape Keys", ""),
                                                     ("KEYFRAMES", "Keyframed Points", "")),
                                 default="SHAPE_KEYS")
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=100, min=1)

    def fit_settings(self) -> dict:
        """Settings for the worker's ``fit_surface`` task."""
        overrides: dict = {"encoding": self.encoding}
        if self.device != "auto":
            overrides["device"] = self.device
        if self.budget == "STEPS":
            overrides["steps"] = int(self.steps)
        elif self.budget == "TIME":
            overrides["time_budget"] = float(self.time_budget)
        settings = {
            "preset": self.preset,
            "overrides": overrides,
            "resolution": int(self.resolution),
            "colors": True,
            "preview_every_s": float(self.preview_every) if self.live_preview else 0.0,
        }
        return merge_extra(settings, self.extra_settings)


def merge_extra(settings: dict, extra: str) -> dict:
    """Merge a JSON object into ``settings`` (one level deep for dict values); ValueError if invalid."""
    if not extra.strip():
        return settings
    try:
        data = json.loads(extra)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Extra Settings is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("Extra Settings must be a JSON object")
    out = dict(settings)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


classes = (SAPE_Settings,)


def register_properties() -> None:
    bpy.types.Scene.sape_geom = PointerProperty(type=SAPE_Settings)


def unregister_properties() -> None:
    del bpy.types.Scene.sape_geom
