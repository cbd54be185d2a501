"""The project's locustfile: the users live in the SDK's ``mnist_client.loadtest.users``.

    locust -f deploy/locust/locustfile.py --host http://127.0.0.1:8080
    mnist-loadtest --host http://127.0.0.1:8080 --steps 8,16,32 --step-seconds 20

Settings are environment variables; see that module's docstring.
"""

from mnist_client.loadtest.users import *  # noqa: F403 - Locust collects the user classes
