import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaximpala.envs.driving.collision import boxes_overlap, ego_hits


def _overlap(center_b, heading_b, half_b=(2.0, 1.0)):
    return bool(boxes_overlap((0.0, 0.0), 0.0, (2.0, 1.0), center_b, heading_b, half_b))


def test_axis_aligned_boxes():
    assert _overlap((3.9, 0.0), 0.0)  # 4 m apart along x, reaches 2 + 2
    assert not _overlap((4.1, 0.0), 0.0)
    assert not _overlap((0.0, 2.1), 0.0)
    assert _overlap((0.0, 1.9), 0.0)


def test_rotated_box_corner_versus_separating_axis():
    # B rotated 45 deg: its corner reaches sqrt(2^2 + ...) - test both sides of touching.
    # A unit square (half 0.5) rotated 45 deg reaches 0.7071 along x.
    half = (0.5, 0.5)
    assert _overlap((2.7, 0.0), np.pi / 4, half)
    assert not _overlap((2.72, 0.0), np.pi / 4, half)
    # Off A's corner along the diagonal: separated along the rotated box's axis.
    assert not _overlap((2.9, 1.9), np.pi / 4, half)


def test_ego_hits_only_valid_objects():
    obj_s = np.array([[3.0, 50.0], [3.0, 50.0]])
    obj_d = np.zeros((2, 2))
    valid = np.array([[True, True], [False, True]])
    hits = ego_hits(np.zeros(2), np.zeros(2), np.zeros(2), (2.25, 0.95), obj_s, obj_d,
                    np.zeros((2, 2)), (np.full((2, 2), 2.0), np.full((2, 2), 1.0)), valid)
    assert hits.tolist() == [True, False]


def _corners_and_edges(cx, cy, heading, hl, hw, k=9):
    """Points on the outline of a box: [k*4, 2]."""
    t = np.linspace(-1, 1, k)
    local = np.concatenate([
        np.stack([t * hl, np.full(k, hw)], 1), np.stack([t * hl, np.full(k, -hw)], 1),
        np.stack([np.full(k, hl), t * hw], 1), np.stack([np.full(k, -hl), t * hw], 1),
    ])
    c, s = np.cos(heading), np.sin(heading)
    return np.stack([cx + local[:, 0] * c - local[:, 1] * s,
                     cy + local[:, 0] * s + local[:, 1] * c], 1)


def _inside(points, cx, cy, heading, hl, hw):
    c, s = np.cos(heading), np.sin(heading)
    dx, dy = points[:, 0] - cx, points[:, 1] - cy
    return (np.abs(dx * c + dy * s) <= hl) & (np.abs(-dx * s + dy * c) <= hw)


@settings(max_examples=300, deadline=None)
@given(st.floats(-6, 6), st.floats(-6, 6), st.floats(-3.2, 3.2), st.floats(-3.2, 3.2),
       st.floats(0.2, 3), st.floats(0.2, 1.5))
def test_sat_agrees_with_outline_sampling(x, y, heading_a, heading_b, hl, hw):
    a = (0.0, 0.0, heading_a, 2.0, 1.0)
    b = (x, y, heading_b, hl, hw)
    touching = _inside(_corners_and_edges(*b, k=41), *a).any() or _inside(
        _corners_and_edges(*a, k=41), *b).any()
    sat = bool(boxes_overlap((0.0, 0.0), heading_a, (2.0, 1.0), (x, y), heading_b, (hl, hw)))
    if touching:
        assert sat
    # outlines that cross always contain a sampled point of one inside the other, except
    # near-grazing contacts finer than the sampling: only check clear separations
    far_apart = not _inside(_corners_and_edges(x, y, heading_b, hl + 0.05, hw + 0.05, 41),
                            0.0, 0.0, heading_a, 2.05, 1.05).any() and not _inside(
        _corners_and_edges(0.0, 0.0, heading_a, 2.05, 1.05, 41), x, y, heading_b,
        hl + 0.05, hw + 0.05).any()
    if far_apart:
        assert not sat
