"""Talks to a deployed stack with Triton's Open Inference Protocol client
(tritonclient.http), over HTTPS, as a user of KServe or Triton would.

    python test/clients/oip_client.py HOST:PORT CA_FILE MODEL_REPOSITORY

For every model in the repository it reads the server's and the model's
metadata, sends the card's example record as one named tensor per field,
and prints one JSON line per model with the outputs the server returned.
Exits non-zero on the first problem.
"""

import json
import os
import sys

import numpy as np
import tritonclient.http as httpclient

DTYPES = {"FP64": np.float64, "INT64": np.int64, "BYTES": np.object_}


def main(url, ca_file, repository):
    client = httpclient.InferenceServerClient(url=url, ssl=True, ssl_options={"ca_certs": ca_file})
    assert client.is_server_live() and client.is_server_ready(), "server not live and ready"
    for name in sorted(os.listdir(repository)):
        with open(os.path.join(repository, name, "model.json")) as file:
            card = json.load(file)
        assert client.is_model_ready(name, card["version"]), f"{name} {card['version']} not ready"
        metadata = client.get_model_metadata(name)
        inputs = []
        for tensor in metadata["inputs"]:
            field = next(f for f in card["inputs"] if f["name"] == tensor["name"])
            value = field.get("example")
            if value is None:
                value = field.get("minimum", (field.get("categories") or sorted(field.get("encoding", {})) or [None])[0])
            data = np.array([[value]], dtype=DTYPES[tensor["datatype"]])
            inputs.append(httpclient.InferInput(tensor["name"], [1, 1], tensor["datatype"]))
            inputs[-1].set_data_from_numpy(data, binary_data=False)
        outputs = [httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
        result = client.infer(name, inputs, model_version=card["version"], outputs=outputs)
        answer = {o["name"]: result.as_numpy(o["name"]).tolist() for o in metadata["outputs"]}
        answer = {k: [v.decode() if isinstance(v, bytes) else v for v in vs] if isinstance(vs, list) else vs for k, vs in answer.items()}
        print(json.dumps({"model": name, "version": result.get_response()["model_version"], "outputs": answer}))


if __name__ == "__main__":
    main(*sys.argv[1:])
