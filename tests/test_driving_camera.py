import numpy as np

from jaximpala.envs.driving.camera import CHANNELS, CameraGeometry, Scene, rasterise

GEOMETRY = CameraGeometry(64, 0.75)


def _scene(**changes):
    fields = dict(
        ego_s=np.array([100.0]), ego_d=np.array([0.0]), ego_heading=np.array([0.0]),
        ego_half=(2.25, 0.95), half_width=np.array([3.5]), num_lanes=np.array([2]),
        lane_width=np.array([3.5]), goal_s=np.array([120.0]),
        solid_rows=np.zeros((1, 64), bool), crosswalk_s=np.array([[1e9]]),
        traffic_s=np.array([[110.0]]), traffic_d=np.array([[1.75]]),
        traffic_half_length=np.array([[2.25]]), traffic_half_width=np.array([[0.9]]),
        traffic_active=np.array([[True]]), ped_s=np.array([[105.0]]),
        ped_d=np.array([[-1.0]]),
    )
    fields.update(changes)
    return Scene(**fields)


def _draw(scene):
    image = rasterise(scene, GEOMETRY)
    assert image.shape == (1, 64, 64, len(CHANNELS)) and image.dtype == np.uint8
    return image[0]


def test_layers_land_on_hand_computed_pixels():
    image = _draw(_scene())
    assert set(np.unique(image)) == {0, 255}
    # Road +-3.5 m at 0.75 m/px around column 31.5: columns 27..36 are drivable.
    assert np.flatnonzero(image[0, :, 0]).tolist() == list(range(27, 37))
    assert (image[:, 27:37, 0] == 255).all()
    # Edges at columns 27 and 36 are solid; the divider (column 31) is dashed.
    assert (image[:, 27, 1] == 255).all() and (image[:, 36, 1] == 255).all()
    assert 0 < (image[:, 31, 1] == 255).sum() < 64
    # Traffic box (s + 10 m, d = 1.75 m): rows 31..37, columns 28..30.
    rows, cols = np.nonzero(image[:40, :, 2])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (31, 37, 28, 30)
    # The ego's footprint is centred: rows 44..50, columns 30..33.
    rows, cols = np.nonzero(image[40:, :, 2])
    assert (rows.min() + 40, rows.max() + 40, cols.min(), cols.max()) == (44, 50, 30, 33)
    # The pedestrian (s + 5 m, d = -1 m) is one pixel.
    assert np.argwhere(image[..., 3]).tolist() == [[41, 33]]
    # The route covers the drivable area up to the goal (s = 120 m): rows 21 and below.
    assert (image[21:, 27:37, 4] == 255).all() and not image[:21, :, 4].any()


def test_solid_dividers_and_zebra_crossings():
    image = _draw(_scene(solid_rows=np.ones((1, 64), bool), crosswalk_s=np.array([[130.0]])))
    assert (image[:, 31, 1] == 255).all()
    # Crosswalk at s = 130 m (+-2 m): rows 5..10 get zebra stripes across the road.
    painted = (image[:, 27:37, 1] > 0).sum(axis=1)
    assert np.flatnonzero(painted > 3).tolist() == list(range(5, 11))


def test_rotated_ego_and_off_image_objects():
    image = _draw(_scene(ego_heading=np.array([np.pi / 2]), traffic_s=np.array([[500.0]]),
                         ped_s=np.array([[500.0]])))
    rows, cols = np.nonzero(image[..., 2])
    # Turned 90 degrees the ego is wide across columns and short along rows.
    assert np.ptp(cols) > np.ptp(rows)
    assert not image[..., 3].any()


def test_extra_channel_holds_the_ego_apart():
    image = rasterise(_scene(), GEOMETRY, channels=6, ego_channel=5)[0]
    assert image[44:51, 30:34, 5].all() and not image[44:51, 30:34, 2].any()
    assert image[31:38, 28:31, 2].all()
