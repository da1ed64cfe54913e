import numpy as np

from jaximpala.envs.driving import noise


def test_same_inputs_same_numbers_and_batch_independence():
    keys = np.array([1, 2, 3], np.uint64)
    steps = np.array([0, 5, 7])
    batch = noise.uniform(keys, steps, 3, 4)
    alone = noise.uniform(keys[1:2], steps[1:2], 3, 4)
    np.testing.assert_array_equal(batch[1:2], alone)
    np.testing.assert_array_equal(batch, noise.uniform(keys, steps, 3, 4))


def test_streams_steps_and_keys_differ():
    key, step = np.array([9], np.uint64), np.array([0])
    base = noise.uniform(key, step, 1, 8)
    assert not np.array_equal(base, noise.uniform(key, step, 2, 8))
    assert not np.array_equal(base, noise.uniform(key, step + 1, 1, 8))
    assert not np.array_equal(base, noise.uniform(key + np.uint64(1), step, 1, 8))


def test_uniform_and_normal_statistics():
    keys = np.arange(2000, dtype=np.uint64)
    u = noise.uniform(keys, np.zeros(2000, np.int64), 0, 50)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    z = noise.normal(keys, np.zeros(2000, np.int64), 0, 50)
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02


def test_step_noise_rows_draw_the_same_numbers_as_the_full_batch():
    keys, steps = np.array([4, 5, 6], np.uint64), np.array([3, 0, 9])
    step_noise = noise.StepNoise(keys, steps)
    full = step_noise.uniform(7, 5)
    np.testing.assert_array_equal(step_noise.uniform(7, 5, rows=np.array([2, 0, 2])),
                                  full[[2, 0, 2]])


def test_normal_is_batch_independent_and_gaussian_in_its_quantiles():
    keys, steps = np.arange(3000, dtype=np.uint64), np.arange(3000) % 7
    z = noise.normal(keys, steps, 5, 65)  # odd size: the last pair's sine is dropped
    for rows in ([0], [17, 4], list(range(5, 38))):  # lengths hitting SIMD tails
        np.testing.assert_array_equal(noise.normal(keys[rows], steps[rows], 5, 65), z[rows])
    assert np.abs(z).max() < 5.8  # 24-bit uniforms bound the radius
    for q, expected in ((1.0, 0.3173), (1.96, 0.05), (3.0, 0.0027)):
        assert abs((np.abs(z) > q).mean() - expected) < 0.1 * expected + 2e-4
