"""Deform onto Target in the bpy module: the selected mesh onto the active one through the real worker."""

from __future__ import annotations

import json

import numpy as np
import pytest
from blender_scene import (  # tests/addon/blender_scene.py
    drive,
    runner,
    select_only,
    snapshot_scene,
)

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy")

TINY = json.dumps(
    {
        "config": {
            "calibration_steps": 5,
            "source_samples": 200,
            "target_samples": 5000,
            "target_per_step": 500,
            "metric_points": 2000,
            "device": "cpu",
        }
    }
)


def sphere_and_target():
    bpy.ops.mesh.primitive_uv_sphere_add(segments=16, ring_count=8, radius=1.0, location=(0.0, 0.0, 0.0))
    source = bpy.context.active_object
    source.name = "Source"
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(4.0, 0.0, 1.0))
    target = bpy.context.active_object
    target.name = "Target"
    target.scale = (1.5, 1.0, 0.5)
    bpy.context.view_layer.update()  # matrix_world follows the scale
    select_only(target, source)  # target active, source selected
    return source, target


def test_deform_onto_target_keeps_order_uvs_and_the_scene(addon):
    source, _target = sphere_and_target()
    before = snapshot_scene()
    uv = np.empty(len(source.data.loops) * 2, np.float32)
    source.data.uv_layers.active.data.foreach_get("uv", uv)
    assert bpy.ops.sape.deform_mesh(steps=3, snapshots=2, frame_start=1, frame_end=10, extra=TINY) == {"FINISHED"}
    drive()
    result = bpy.data.objects.get("Source_sape")
    assert result is not None, runner().RUNNER.state.messages
    assert len(result.data.vertices) == len(source.data.vertices)
    assert [tuple(p.vertices) for p in result.data.polygons] == [tuple(p.vertices) for p in source.data.polygons]
    uv_after = np.empty_like(uv)
    result.data.uv_layers.active.data.foreach_get("uv", uv_after)
    assert np.array_equal(uv, uv_after)
    keys = result.data.shape_keys.key_blocks
    assert keys[0].name == "Basis" and len(keys) == 5  # start, 2 snapshots, end
    co = np.empty(len(keys[-1].data) * 3, np.float32)
    keys[-1].data.foreach_get("co", co)
    matrix = np.array(result.matrix_world)
    world = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    assert np.abs(world.mean(axis=0) - [4.0, 0.0, 1.0]).max() < 0.6  # on the target, world space
    assert np.allclose(matrix[:3, 3], [4.0, 0.0, 1.0])  # and its origin is the target's, not the source's
    after = snapshot_scene()["objects"]
    assert after["Source"] == before["objects"]["Source"] and after["Target"] == before["objects"]["Target"]


def test_a_wrong_selection_is_refused_and_changes_nothing(addon):
    _source, target = sphere_and_target()
    before = snapshot_scene()
    select_only(target)
    with pytest.raises(RuntimeError, match="select one source mesh"):
        bpy.ops.sape.deform_mesh()
    assert snapshot_scene() == before
