import subprocess
import sys
import textwrap


def test_losses_import_without_flax_optax_or_gymnasium():
    # Setting sys.modules[name] = None makes `import name` raise ImportError, as if the
    # package were not installed.
    script = textwrap.dedent("""
        import sys
        for name in ("flax", "optax", "gymnasium", "zmq", "wandb", "yaml", "orbax"):
            sys.modules[name] = None
        import jax.numpy as jnp
        import jaximpala.losses as losses
        out = losses.vtrace(jnp.zeros((3, 2)), jnp.ones((3, 2)), jnp.ones((3, 2)),
                            jnp.zeros((3, 2)), jnp.zeros((2,)))
        assert out.vs.shape == (3, 2)
        heavy = [m for m in ("flax", "optax", "gymnasium") if sys.modules.get(m) is not None]
        assert not heavy, heavy
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
