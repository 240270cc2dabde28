"""Scene settings shown in the SAPE panel (``scene.sape_geom``)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import job_settings as js


def _is_curve(_self, obj):
    return obj.type == "CURVE"


class SAPE_Settings(bpy.types.PropertyGroup):
    # ---------------------------------------------------------------- fit surface
    preset: EnumProperty(name="Preset", items=js.PRESETS, default=js.DEFAULT_PRESET)
    encoding: EnumProperty(name="Encoding", items=js.ENCODINGS, default=js.DEFAULT_ENCODING)
    resolution: IntProperty(
        name="Resolution",
        description="Marching-cubes grid size of the result",
        default=js.RESOLUTION_DEFAULT,
        min=js.RESOLUTION_MIN,
        max=js.RESOLUTION_MAX,
    )
    budget: EnumProperty(
        name="Budget",
        items=(
            ("PRESET", "Preset", "The preset's own number of steps"),
            ("STEPS", "Steps", "A fixed number of training steps"),
            ("TIME", "Time", "Train for at most this many seconds"),
        ),
        default="PRESET",
    )
    steps: IntProperty(name="Steps", default=2000, min=1, soft_max=100000)
    time_budget: FloatProperty(name="Seconds", default=60.0, min=1.0, soft_max=3600.0, subtype="TIME_ABSOLUTE")
    device: EnumProperty(name="Device", items=js.DEVICES, default=js.DEFAULT_DEVICE)
    precision: EnumProperty(
        name="Precision",
        items=js.PRECISIONS,
        default=js.DEFAULT_PRECISION,
        description="Precision of the network's matrix products",
    )
    live_preview: BoolProperty(name="Live Preview", description="Show a coarse mesh while training", default=True)
    preview_every: FloatProperty(
        name="Every",
        description="Seconds between live previews, at least: fewer come while Blender "
        "itself is busy (drawing without a GPU, or your own work)",
        default=js.DEFAULT_PREVIEW_EVERY_S,
        min=0.5,
        soft_max=60.0,
        subtype="TIME_ABSOLUTE",
    )
    keep_largest: BoolProperty(
        name="Keep Largest Piece", description="Drop every piece of the result but the largest", default=False
    )
    skip_smoothing: BoolProperty(
        name="No Smoothing",
        description="Keep the surface as marching cubes gives it (the Fast and Quality "
        "presets smooth its flat and gently curved parts, keeping edges)",
        default=False,
    )
    skip_snapping: BoolProperty(
        name="No Snapping",
        description="Keep the fitted field's own surface (the Fast and Quality presets put a solid's surface "
        "onto the source mesh where it lies within a grid cell of it, creases sharpened)",
        default=False,
    )
    hide_source: BoolProperty(
        name="Hide Source",
        description="Hide the fitted object in the viewport when its result arrives (the object itself is not changed)",
        default=False,
    )
    max_faces: IntProperty(
        name="Max Faces",
        description="At most this many faces, through a Decimate modifier on the result (0: no limit)",
        default=0,
        min=0,
        soft_max=1_000_000,
    )
    extra_settings: StringProperty(
        name="Extra Settings",
        description=f"JSON object merged into the fit job's settings (advanced; e.g. {js.EXTRA_SETTINGS_EXAMPLE})",
        default="",
    )

    # ---------------------------------------------------------------- deform curve
    target_kind: EnumProperty(
        name="Target",
        items=(("OBJECT", "Curve", "A curve object"), ("IMAGE", "Image", "A silhouette image file")),
        default="OBJECT",
    )
    target_object: PointerProperty(name="Target Curve", type=bpy.types.Object, poll=_is_curve)
    target_image: StringProperty(name="Image", subtype="FILE_PATH", default="")
    source_kind: EnumProperty(
        name="Source",
        items=(("CIRCLE", "Circle", "Start from a circle"), ("OBJECT", "Curve", "Start from a curve object")),
        default="CIRCLE",
    )
    source_object: PointerProperty(name="Source Curve", type=bpy.types.Object, poll=_is_curve)
    deform_plane: EnumProperty(
        name="Plane",
        items=(
            ("VIEW", "View", "The plane of the 3D view in which Deform is pressed (scripts: XY)"),
            ("XY", "XY (Top)", "The world XY plane"),
            ("XZ", "XZ (Front)", "The world XZ plane"),
            ("YZ", "YZ (Side)", "The world YZ plane"),
        ),
        default="VIEW",
        description="The plane curves are read in and the result is built in",
    )
    deform_steps: IntProperty(name="Steps", default=1000, min=1, soft_max=20000)
    deform_extra_settings: StringProperty(
        name="Extra Settings",
        description=f"JSON object merged into the deform job's settings (advanced; e.g. {js.DEFORM_EXTRA_SETTINGS_EXAMPLE})",
        default="",
    )
    animate: BoolProperty(name="Animate", description="Key the optimisation as an animation", default=False)
    animation_mode: EnumProperty(
        name="Keys",
        items=(("SHAPE_KEYS", "Shape Keys", ""), ("KEYFRAMES", "Keyframed Points", "")),
        default="SHAPE_KEYS",
    )
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=100, min=1)

    def fit_settings(self) -> dict:
        """Settings for the worker's ``fit_surface`` task."""
        return js.fit_settings(
            preset=self.preset,
            encoding=self.encoding,
            device=self.device,
            budget=self.budget,
            steps=self.steps,
            time_budget=self.time_budget,
            resolution=self.resolution,
            preview_every_s=self.preview_every if self.live_preview else 0.0,
            extra=self.extra_settings,
            keep_largest=self.keep_largest,
            skip_smoothing=self.skip_smoothing,
            skip_snapping=self.skip_snapping,
            precision=self.precision,
        )


classes = (SAPE_Settings,)


def register_properties() -> None:
    bpy.types.Scene.sape_geom = PointerProperty(type=SAPE_Settings)


def unregister_properties() -> None:
    del bpy.types.Scene.sape_geom
