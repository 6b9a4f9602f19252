def test_home_answers(client):
    assert client.get("/").status_code == 200


def test_parent_logs_in(client, auth, parent):
    response = auth.login(parent)
    assert response.status_code == 303
    assert client.get("/tableau-de-bord").status_code == 200
