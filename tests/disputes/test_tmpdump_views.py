from test_dispute_views import entry, dispute, second_senior  # noqa


def test_dump(client, login, counter_clerk, entry, review_officer, lender_staff, second_senior, senior_review_officer):
    login(client, counter_clerk)
    open("/tmp/dump/intake.html", "w").write(page(client.post(reverse("disputes:intake"), {"id_type": "RIC", "id_number": RIC_A, "find": "1"})))
    r = client.post(reverse("disputes:intake"), {**intake_data(str(entry.pk)), "attachments": [pdf("a.pdf")]})
    d = Dispute.objects.get()
    open("/tmp/dump/receipt.html", "w").write(page(client.get(r["Location"])))
    client.logout(); login(client, review_officer)
    services.dispute_assign(dispute=d, actor=review_officer, assignee=review_officer)
    open("/tmp/dump/detail_officer.html", "w").write(page(client.get(detail_url(d))))
    open("/tmp/dump/queue.html", "w").write(page(client.get(reverse("disputes:queue"))))
    services.dispute_request_verification(dispute=d, actor=review_officer)
    client.logout(); login(client, lender_staff)
    open("/tmp/dump/detail_member.html", "w").write(page(client.get(detail_url(d))))
    services.dispute_answer_verification(dispute=d, actor=lender_staff, answer="corrected", note="overdue 1000")
    services.dispute_decide(dispute=d, actor=review_officer, decision="corrected", reasons="ok", corrections={"overdue_amount": "1000", "category": "fraud"})
    client.logout(); login(client, counter_clerk)
    open("/tmp/dump/letter.html", "w").write(page(client.get(action_url("letter", d))))
    open("/tmp/dump/bulletin.html", "w").write(page(client.get(reverse("disputes:bulletin"))))
