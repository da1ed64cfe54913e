import numpy as np

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
