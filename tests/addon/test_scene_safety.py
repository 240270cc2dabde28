"""The artist's scene while the add-on works: file changes, undo, placement, Edit Mode and renders,
checkpoints, and the source object never touched (bpy module, fake workers; what the artist is told:
test_feedback.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from blender_scene import (  # tests/addon/blender_scene.py
    TINY_DEFORM,
    Recorder,
    add_cube,
    draw_panel,
    drive,
    drive_until,
    fit_with_fake,
    mod,
    runner,
    select_only,
    texts,
)

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy")


def source_state(obj) -> dict:
    """Everything of the artist's object a fit must leave as it was."""
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return {
        "name": obj.name,
        "data": obj.data.name,
        "co": co.tobytes(),
        "matrix": [tuple(r) for r in obj.matrix_world],
        "materials": [m.name if m else None for m in obj.data.materials],
        "slots": [(s.link, s.material.name if s.material else None) for s in obj.material_slots],
        "modifiers": [(m.name, m.type, m.show_viewport, getattr(m, "levels", None)) for m in obj.modifiers],
        "smooth": [p.use_smooth for p in obj.data.polygons],
        "hidden": obj.hide_get(),
        "collections": [c.name for c in obj.users_collection],
        "users": obj.data.users,
    }


def artist_cube(name="Cube"):
    cube = add_cube(name)
    mat = bpy.data.materials.new("Artist Paint")
    cube.data.materials.append(mat)
    cube.modifiers["Subdivision"].levels = 2
    return cube


# ------------------------------------------------------------------------------------------ files
def test_file_new_during_a_fit_cancels_it_and_nothing_lands_in_the_new_file(addon, tmp_path):
    cube = artist_cube()
    fit_with_fake(tmp_path, cube)
    drive_until(lambda: runner().RUNNER.preview.name is not None)
    job = runner().RUNNER.current[1]
    bpy.ops.wm.read_homefile(use_empty=True)  # File > New
    assert not runner().RUNNER.busy and job.proc.poll() is not None
    time.sleep(1.0)  # the fake would have finished by now
    drive()
    assert not [o.name for o in bpy.data.objects if "sape" in o.name]
    assert "SAPE Results" not in bpy.data.collections
    assert runner().RUNNER.state.status == ""  # the new file's panel starts clean
    assert "Cube cancelled: another file was opened" in mod("reports").current()[1]  # the status bar says it
    assert not Path(job.work_dir).exists()


# ------------------------------------------------------------------------------------------ undo
def test_ctrl_z_removes_a_result_and_redo_brings_it_back(addon, tmp_path):
    cube = artist_cube()
    bpy.ops.ed.undo_push(message="Add Cube")  # what Blender's own Add Cube leaves on the undo stack
    before = source_state(cube)
    fit_with_fake(tmp_path, cube)
    drive()
    assert "Cube_sape" in bpy.data.objects
    bpy.ops.ed.undo()
    assert "Cube_sape" not in bpy.data.objects and "SAPE Results" not in bpy.data.collections
    assert source_state(bpy.data.objects["Cube"]) == before
    bpy.ops.ed.redo()
    result = bpy.data.objects.get("Cube_sape")
    assert result is not None and len(result.data.polygons) > 0
    assert source_state(bpy.data.objects["Cube"]) == before


# ------------------------------------------------------------------------------------------ results
def test_results_are_smooth_and_the_source_is_untouched(addon, tmp_path):
    cube = artist_cube()
    before = source_state(cube)
    fit_with_fake(tmp_path, cube, keep_largest=True, max_faces=10)
    assert bpy.context.scene.sape_geom.fit_settings()["keep_largest"] is True
    drive()
    result = bpy.data.objects["Cube_sape"]
    assert all(p.use_smooth for p in result.data.polygons)
    decimate = result.modifiers[mod("results").MAX_FACES_MODIFIER]
    assert decimate.type == "DECIMATE" and decimate.ratio == pytest.approx(10 / len(result.data.polygons))
    assert source_state(cube) == before  # data, modifiers, materials, visibility

    s = bpy.context.scene.sape_geom
    s.hide_source, s.max_faces = True, 0
    select_only(cube)
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    assert cube.hide_get() and {**source_state(cube), "hidden": False} == before  # only hidden, as asked


def test_reextract_after_moving_keeps_the_place_materials_and_modifiers(addon, tmp_path):
    cube = artist_cube()
    fit_with_fake(tmp_path, cube)
    drive()
    result = bpy.data.objects["Cube_sape"]
    fitted_co = np.empty(len(result.data.vertices) * 3, np.float32)
    result.data.vertices.foreach_get("co", fitted_co)
    result.location = (10.0, -4.0, 2.0)
    result.rotation_euler = (0.3, 0.0, 1.2)
    artist = bpy.data.materials.new("Artist Clay")
    result.data.materials[0] = artist
    result.modifiers.new("Bevel", "BEVEL")
    bpy.context.view_layer.update()
    placed = [tuple(r) for r in result.matrix_world]
    select_only(result)
    bpy.context.scene.sape_geom.resolution = 64
    assert bpy.ops.sape.reextract() == {"FINISHED"}
    drive()
    result = bpy.data.objects["Cube_sape"]
    assert [tuple(r) for r in result.matrix_world] == placed
    assert [m.name for m in result.data.materials] == ["Artist Clay"]
    assert [m.name for m in result.modifiers] == ["Bevel"]
    assert result["sape_resolution"] == 64 and all(p.use_smooth for p in result.data.polygons)
    co = np.empty(len(result.data.vertices) * 3, np.float32)
    result.data.vertices.foreach_get("co", co)
    assert np.allclose(co, fitted_co, atol=1e-5)  # the fit-time frame, not the moved one


def test_the_preview_is_readable_and_its_source_comes_back(addon, tmp_path):
    """The preview is drawn solid in its own colour with its source hidden (over a visible source the two
    z-fight); the source's visibility comes back when the result replaces the preview."""
    cube = artist_cube()
    hidden_by_artist = add_cube("Hidden", location=(5.0, 0.0, 0.0), subsurf=False)
    hidden_by_artist.hide_set(True)
    fit_with_fake(tmp_path, cube, hide_source=False)
    drive_until(lambda: runner().RUNNER.preview.name is not None)
    preview = bpy.data.objects[runner().RUNNER.preview.name]
    assert preview.display_type == "TEXTURED" and not cube.visible_get()
    assert [m.name for m in preview.data.materials] == ["SAPE preview"]
    assert tuple(preview.data.materials[0].diffuse_color) == pytest.approx(mod("convert").PREVIEW_COLOR)
    drive()
    assert "Cube_sape" in bpy.data.objects and cube.visible_get() and not hidden_by_artist.visible_get()
    assert "SAPE preview" not in bpy.data.materials


def test_results_wait_while_an_object_is_in_edit_mode_or_a_render_runs(addon, tmp_path):
    cube = artist_cube()
    other = add_cube("Other", location=(5.0, 0.0, 0.0), subsurf=False)
    fit_with_fake(tmp_path, cube)
    drive_until(lambda: runner().RUNNER.preview.name is not None)
    select_only(other)
    bpy.ops.object.mode_set(mode="EDIT")
    drive_until(lambda: runner().RUNNER.current[1].final is not None, timeout=30)
    for _ in range(10):
        runner().poll()
        time.sleep(0.05)
    assert (
        "Cube_sape" not in bpy.data.objects and "waits until 'Other' leaves Edit Mode" in runner().RUNNER.state.status
    )
    handlers = mod("handlers")
    handlers.on_render_init()
    bpy.ops.object.mode_set(mode="OBJECT")
    runner().poll()
    assert "Cube_sape" not in bpy.data.objects and "render ends" in runner().RUNNER.state.status
    handlers.on_render_end()
    drive()
    assert "Cube_sape" in bpy.data.objects and runner().RUNNER.state.status == "Done"


def test_checkpoints_go_beside_the_saved_file_or_into_the_user_folder(addon, tmp_path):
    cube = artist_cube()
    fit_with_fake(tmp_path, cube)
    drive()
    unsaved = bpy.data.objects["Cube_sape"]["sape_checkpoint"]
    assert os.path.isfile(unsaved) and Path(unsaved).parent == mod("paths").user_folder() / "checkpoints"
    blend = tmp_path / "project" / "scene.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    select_only(cube)
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    stored = bpy.data.objects["Cube_sape.001"]["sape_checkpoint"]
    assert stored.startswith("//sape_checkpoints/") and (blend.parent / stored[2:]).is_file()
    select_only(bpy.data.objects["Cube_sape.001"])
    assert bpy.ops.sape.reextract() == {"FINISHED"}  # the relative path resolves
    drive()
    assert runner().RUNNER.state.status == "Done"


# ------------------------------------------------------------------------------------------ conventions
def test_menu_escape_and_labels(addon):
    ui = mod("ui")
    assert ui.draw_object_menu in bpy.types.VIEW3D_MT_object._dyn_ui_initialize()
    layout = Recorder()
    ui.SAPE_MT_object.draw(type("Menu", (), {"layout": layout})(), bpy.context)
    ops = [c[1][0] for c in layout.calls if c[0] == "operator"]
    assert {"sape.fit_selected", "sape.reextract", "sape.deform_curve", "sape.cancel", "sape.setup_worker"} <= set(ops)
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is not None:
        items = [(k.idname, k.type) for km in keyconfig.keymaps for k in km.keymap_items]
        assert ("sape.cancel", "ESC") in items
    assert not bpy.ops.sape.cancel.poll()  # Esc passes through when nothing runs
    labels = [p.name for p in bpy.types.Scene.bl_rna.properties["sape_geom"].fixed_type.properties if p.name]
    small = {"of", "in", "the", "a"}
    for label in labels + [c.bl_label for c in ui.classes]:
        words = label.replace("(", "").split()
        assert all(w[0].isupper() or w in small or not w[0].isalpha() for w in words), label
        assert len(label) <= 18, label  # the label column of the default sidebar width
    calls = draw_panel("Fit", "Result", "Deform", "Setup")
    assert all(len(str(c[2].get("text", ""))) <= 18 for c in calls if c[0] in ("prop", "operator")), calls


def test_voxel_size_is_shown_in_scene_units(addon):
    cube = add_cube(subsurf=False)  # radius sqrt(3)
    select_only(cube)
    bpy.context.scene.sape_geom.resolution = 128
    shown = texts(draw_panel("Fit"))
    expected = 2 * np.sqrt(3) / (0.95 * 127)
    assert f"Voxel ≤ {bpy.utils.units.to_string('METRIC', 'LENGTH', expected, precision=3)}" in shown
    bpy.context.scene.sape_geom.resolution = 1024
    assert "slow, large mesh" in texts(draw_panel("Fit"))


def test_deform_in_the_front_plane_keeps_a_curve_drawn_in_front_view(addon):
    """A circle standing in the XZ plane (drawn in front view): read and rebuilt in that plane."""

    bpy.ops.curve.primitive_bezier_circle_add(radius=2.0, location=(1.0, 3.0, 0.5), rotation=(np.pi / 2, 0.0, 0.0))
    target = bpy.context.active_object
    s = bpy.context.scene.sape_geom
    s.target_kind, s.target_object, s.source_kind, s.deform_plane = "OBJECT", target, "CIRCLE", "XZ"
    s.deform_steps = 10
    s.deform_extra_settings = json.dumps({"config": TINY_DEFORM})
    assert bpy.ops.sape.deform_curve() == {"FINISHED"}
    drive()
    result = bpy.data.objects.get(f"{target.name}_sape")
    assert result is not None, runner().RUNNER.state.messages
    co = np.empty(len(result.data.splines[0].points) * 4, np.float32)
    result.data.splines[0].points.foreach_get("co", co)
    local = co.reshape(-1, 4)[:, :3]
    m = np.array(result.matrix_world)
    world = local @ m[:3, :3].T + m[:3, 3]
    assert np.allclose(world[:, 1], 3.0, atol=1e-4)  # in the target's plane
    assert np.ptp(world[:, 0]) > 0.1 and np.ptp(world[:, 2]) > 0.1  # a ring in that plane, not a line
    assert np.allclose([world[:, 0].mean(), world[:, 2].mean()], [1.0, 0.5], atol=0.6)
