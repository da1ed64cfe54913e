import numpy as np
import pytest

from jaximpala.envs.driving import lidar


def test_ray_angles_start_ahead_and_turn_left():
    angles = lidar.ray_angles(8)
    assert angles[0] == 0.0 and angles[2] == pytest.approx(np.pi / 2)


def test_edge_distances():
    angles = np.array([[0.0, np.pi / 2, np.pi / 6, -np.pi / 2]])
    distance = lidar.ray_edge_distance(np.sin(angles), np.array([1.0]), np.array([3.5]))
    # straight ahead never hits; left edge 2.5 m away; at 30 deg 2.5 / 0.5; right edge 4.5 m
    assert distance[0, 0] == np.inf
    np.testing.assert_allclose(distance[0, 1:], [2.5, 5.0, 4.5])


def test_ray_box_distance_uses_the_box_orientation():
    ahead = (np.ones((1, 1)), np.zeros((1, 1)))
    box = dict(box_ds=np.array([[10.0, 10.0]]), box_dd=np.zeros((1, 2)),
               box_heading=np.array([[0.0, np.pi / 2]]), half_length=np.full((1, 2), 2.0),
               half_width=np.full((1, 2), 1.0))
    distance = lidar.ray_box_distance(*ahead, **box)
    np.testing.assert_allclose(distance[0, :, 0], [8.0, 9.0])
    behind = lidar.ray_box_distance(-np.ones((1, 1)), np.zeros((1, 1)), **box)
    assert (behind == np.float32(lidar.MISS)).all()


def test_scan_caps_at_visibility_and_normalises():
    boxes = dict(s=np.array([[30.0, 12.0]]), d=np.array([[0.0, 0.0]]), heading=np.zeros((1, 2)),
                 half_length=np.full((1, 2), 2.0), half_width=np.full((1, 2), 1.0),
                 valid=np.array([[True, False]]))
    reading = lidar.scan(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([3.5]),
                         boxes, np.array([50.0]), np.zeros((1, 4)), 50.0)
    # ahead: the valid box at 28 m (the invalid one at 10 m is ignored); left/right: edges
    np.testing.assert_allclose(reading[0], [28 / 50, 3.5 / 50, 1.0, 3.5 / 50], rtol=1e-6)
    foggy = lidar.scan(np.array([0.0]), np.array([0.0]), np.array([0.0]), np.array([3.5]),
                       boxes, np.array([20.0]), np.zeros((1, 4)), 50.0)
    assert foggy[0, 0] == pytest.approx(0.4) and foggy.dtype == np.float32


def test_nearest_picks_the_closest_valid_objects():
    ds = np.array([[50.0, 5.0, 1.0, 20.0]])
    valid = np.array([[True, True, False, True]])
    assert sorted(lidar.nearest(ds, np.zeros_like(ds), valid, 2)[0].tolist()) == [1, 3]


def test_ray_grazing_a_box_side_is_finite():
    # ray 0 runs exactly along the box's left side (d = half width): 0 * inf inside the slab
    box = dict(box_ds=np.array([[10.0]]), box_dd=np.array([[-1.0]]),
               box_heading=np.zeros((1, 1)), half_length=np.full((1, 1), 2.0),
               half_width=np.full((1, 1), 1.0))
    distance = lidar.ray_box_distance(np.ones((1, 1)), np.zeros((1, 1)), **box)
    assert np.isfinite(distance).all()


def test_nearest_hits_equal_the_dense_test_within_reach():
    # Random boxes around the ego, some over it, some beyond reach, some invalid: testing only
    # the candidate (box, ray) pairs changes no reading a reach-capped scan can show.
    rng = np.random.default_rng(0)
    n, k, r = 200, 12, 64
    heading = rng.uniform(-np.pi, np.pi, n)
    directions = heading[:, None] + lidar.ray_angles(r)
    cos_ray, sin_ray = np.cos(directions), np.sin(directions)
    box = dict(box_ds=rng.uniform(-70, 70, (n, k)), box_dd=rng.uniform(-15, 15, (n, k)),
               box_heading=rng.uniform(-0.5, 0.5, (n, k)),
               half_length=rng.uniform(0.3, 5.0, (n, k)), half_width=rng.uniform(0.3, 1.2, (n, k)))
    box["box_ds"][:, 0] = rng.uniform(-1.0, 1.0, n)  # the ego inside or at a box
    box["box_dd"][:, 0] = 0.0
    valid = rng.random((n, k)) < 0.9
    reach = rng.uniform(20.0, 50.0, n)
    sparse = lidar.nearest_hits(cos_ray, sin_ray, heading, **box, valid=valid, reach=reach)
    dense = np.where(valid[..., None], lidar.ray_box_distance(cos_ray, sin_ray, **box),
                     np.float32(lidar.MISS)).min(axis=1)
    capped = lambda x: np.minimum(x.astype(np.float64), reach[:, None])
    np.testing.assert_array_equal(capped(sparse), capped(dense))
    assert (sparse < lidar.MISS).any() and (sparse == 0.0).any()  # hits and insides happen


def test_scan_nearest_equals_a_scan_of_the_nearest_objects():
    # The compiled selection reads exactly what `scan` reads of the boxes `nearest` picks.
    rng = np.random.default_rng(1)
    n, m, p, r = 50, 20, 6, 32
    ego_s, ego_d = rng.uniform(0, 100, n), rng.uniform(-3, 3, n)
    heading, half_width = rng.uniform(-0.3, 0.3, n), np.full(n, 5.0)
    t_s, t_d = ego_s[:, None] + rng.uniform(-60, 60, (n, m)), rng.uniform(-5, 5, (n, m))
    t_heading = rng.uniform(-0.2, 0.2, (n, m))
    t_half_length, t_half_width = rng.uniform(2, 5, (n, m)), rng.uniform(0.8, 1.2, (n, m))
    active = rng.random((n, m)) < 0.7
    ped_s, ped_d = ego_s[:, None] + rng.uniform(-30, 30, (n, p)), rng.uniform(-6, 6, (n, p))
    sensor_range, noise = rng.uniform(30, 80, n), rng.normal(0, 0.1, (n, r))
    rows = np.arange(n)[:, None]
    cars = lidar.nearest(t_s - ego_s[:, None], t_d - ego_d[:, None], active,
                         lidar.NEAREST_VEHICLES)
    people = lidar.nearest(ped_s - ego_s[:, None], ped_d - ego_d[:, None], np.ones((n, p), bool),
                           lidar.NEAREST_PEDESTRIANS)
    cat = lambda a, b: np.concatenate([a, b], axis=1)
    boxes = dict(s=cat(t_s[rows, cars], ped_s[rows, people]),
                 d=cat(t_d[rows, cars], ped_d[rows, people]),
                 heading=cat(t_heading[rows, cars], np.zeros(people.shape)),
                 half_length=cat(t_half_length[rows, cars], np.full(people.shape, 0.3)),
                 half_width=cat(t_half_width[rows, cars], np.full(people.shape, 0.3)),
                 valid=cat(active[rows, cars], np.ones(people.shape, bool)))
    expected = lidar.scan(ego_s, ego_d, heading, half_width, boxes, sensor_range, noise, 100.0)
    vehicles = np.stack([t_s, t_d, np.cos(t_heading), np.sin(t_heading), t_half_length,
                         t_half_width])
    got = lidar.scan_nearest(ego_s, ego_d, heading, half_width, vehicles, active, ped_s, ped_d,
                             0.3, sensor_range, noise, 100.0)
    np.testing.assert_array_equal(got, expected)
    assert (got < 0.5).any()  # some rays hit something


def test_rotated_ray_directions_match_the_trigonometry_of_the_summed_angle():
    heading = np.random.default_rng(0).uniform(-np.pi, np.pi, 50)
    cos_ray, sin_ray = lidar._ray_directions(heading, 64)
    angles = heading[:, None] + lidar.ray_angles(64)
    np.testing.assert_allclose(cos_ray, np.cos(angles), rtol=0, atol=1e-15)
    np.testing.assert_allclose(sin_ray, np.sin(angles), rtol=0, atol=1e-15)
    # one env alone gets the very same numbers as inside a batch
    alone = lidar._ray_directions(heading[7:8], 64)
    np.testing.assert_array_equal(alone[0][0], cos_ray[7])
    np.testing.assert_array_equal(alone[1][0], sin_ray[7])
