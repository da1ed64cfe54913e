import zmq.auth

from jaximpala.cli import main
from jaximpala.transport.sockets import Curve


def test_keys_command_writes_a_usable_allow_listed_pair(tmp_path, capsys):
    directory = tmp_path / "keys"
    assert main(["keys", str(directory)]) == 0
    server, client = Curve.server(directory), Curve.client(directory)
    assert client.server_public == server.public
    allowed = list((directory / "allowed_clients").iterdir())
    assert [zmq.auth.load_certificate(p)[0] for p in allowed] == [client.public]
    # Keys are never silently replaced.
    assert main(["keys", str(directory)]) == 1
    assert "--force" in capsys.readouterr().out
    assert main(["keys", str(directory), "--force"]) == 0
    assert Curve.server(directory).public != server.public
