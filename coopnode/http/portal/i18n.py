"""The portal's message catalogue: every string a page shows, in Japanese and English.

Japanese is the portal's language (the seed is the co-op's Japanese manual); English is
the second. Pages never hold text of their own: templates call `t(key)` and handlers
name a key for an error, so one file says everything a member can read. A key missing
from the catalogue is a programmer error and raises at once (a test renders every page).

Error keys are the engine's refusal reasons (`invalid_credentials`, `passcode_wrong`,
`password_needs_upper`, …) prefixed with `error.`; an unknown reason falls back to
`error.generic` so that a new refusal still reads as a sentence.

Long, and only texts: every string of the pages in both languages.
"""

from __future__ import annotations

from enum import StrEnum


class Lang(StrEnum):
    JA = "ja"
    EN = "en"


_MESSAGES: dict[str, tuple[str, str]] = {
    # Frame ------------------------------------------------------------------------------
    "site.name": ("大学生協", "University Co-op"),
    "site.portal": ("univcoop マイポータル", "univcoop My Portal"),
    "site.mypage": ("組合員マイページ", "Member My Page"),
    "site.wallet": ("大学生協電子マネー", "Co-op E-money"),
    "site.footer": (
        "© 生活協同組合連合会大学生協事業連合",
        "© National Federation of University Co-ops",
    ),
    "lang.switch": ("English", "日本語"),
    "nav.home": ("ホーム", "Home"),
    "nav.sign_in": ("サインイン", "Sign in"),
    "nav.sign_out": ("サインアウト", "Sign out"),
    "nav.menu": ("メニュー", "Menu"),
    "nav.inquiry": ("お問合せ", "Contact us"),
    "common.cancel_flow": ("中止する", "Cancel"),
    "common.back": ("戻る", "Back"),
    "common.continue": ("続行", "Continue"),
    "common.cancel": ("キャンセル", "Cancel"),
    "common.empty": ("表示するレコードはありません。", "There are no records to show."),
    "common.required": ("※印は入力必須項目です。", "Fields marked ※ are required."),
    "common.mail": ("メールアドレス", "Mail address"),
    "common.password": ("パスワード", "Password"),
    "common.yen": ("{amount}円", "¥{amount}"),
    "common.date": ("日付", "Date"),
    "common.amount": ("金額", "Amount"),
    "common.store": ("店舗", "Store"),
    "common.none": ("なし", "None"),
    "common.go_home": ("ホームへ戻る", "Back to home"),
    "common.go_mypage": ("マイページへ戻る", "Back to My Page"),
    "common.go_guardian": ("ファミリー閲覧へ戻る", "Back to the family view"),
    "store.unknown": ("生協店舗", "Co-op store"),
    "common.js_note": (
        "ボタンは一度だけ押してください。",
        "Press each button once; a second press is ignored.",
    ),
    # Errors -----------------------------------------------------------------------------
    "error.generic": (
        "処理できませんでした。入力内容をご確認のうえ、もう一度お試しください。",
        "This could not be done. Check what you entered and try again.",
    ),
    "error.title": ("エラー", "Error"),
    "error.required": ("入力してください。", "Please fill this in."),
    "error.csrf": (
        "画面の有効期限が切れました。もう一度操作してください。",
        "This page has expired. Please try again.",
    ),
    "error.unauthorized": ("サインインしてください。", "Please sign in."),
    "error.session_expired": (
        "一定時間操作がなかったため、サインアウトしました。",
        "You were signed out after a period without activity.",
    ),
    "error.invalid_credentials": (
        "メールアドレスまたはパスワードが正しくありません。",
        "The mail address or the password is not correct.",
    ),
    "error.locked": (
        "失敗が続いたため、しばらく操作できません。時間をおいてお試しください。",
        "Too many failed attempts. Please wait a while and try again.",
    ),
    "error.busy": (
        "ただいま混み合っています。少し待ってからお試しください。",
        "The service is busy. Please try again in a moment.",
    ),
    "error.no_match": (
        "組合員番号と生年月日が一致する登録が見つかりません。",
        "No registration matches this member number and birth date.",
    ),
    "error.emoney_in_use": (
        "電子マネーのご利用開始後は、このページでメールアドレスを変更できません。"
        "生協店舗の窓口でお手続きください。",
        "Once e-money is in use the address can only be changed at the co-op counter.",
    ),
    "error.mail_in_use": (
        "このメールアドレスは使用できません。",
        "This mail address cannot be used.",
    ),
    "error.phone_mismatch": (
        "登録されている電話番号と一致しません。",
        "This is not the phone number on record.",
    ),
    "error.flow_expired": (
        "手続きの有効期限が切れました。最初からやり直してください。",
        "This procedure has expired. Please start again.",
    ),
    "error.out_of_order": (
        "手続きの順序が正しくありません。最初からやり直してください。",
        "The steps were taken out of order. Please start again.",
    ),
    "error.foreign_origin": (
        "別のサイトから送られたフォームは受け付けません。このサイトの画面から操作してください。",
        "A form sent from another site is refused. Please use this site's own pages.",
    ),
    "error.invalid_input": ("入力内容に誤りがあります。", "Something you entered is not valid."),
    "error.passcode_wrong": (
        "コードが正しくありません。（残り{attempts_left}回）",
        "The code is not correct ({attempts_left} tries left).",
    ),
    "error.passcode_expired": (
        "コードの有効期限が切れました。新しいコードを送信してください。",
        "The code has expired. Please ask for a new one.",
    ),
    "error.passcode_used": ("このコードは使用済みです。", "This code has been used already."),
    "error.passcode_locked": (
        "誤りが続いたため、このコードは無効になりました。新しいコードを送信してください。",
        "Too many wrong tries: this code no longer works. Please ask for a new one.",
    ),
    "error.passcode_cooldown": (
        "{retry_after_s}秒ほど待ってから新しいコードを送信してください。",
        "Please wait about {retry_after_s} seconds before asking for a new code.",
    ),
    "error.passcode_rate_limited": (
        "送信回数の上限に達しました。しばらくしてからお試しください。",
        "Too many codes were sent. Please try again later.",
    ),
    "error.password_mismatch": (
        "確認用のパスワードが一致しません。",
        "The two passwords are not the same.",
    ),
    "error.password_too_short": ("8文字以上にしてください。", "Use at least 8 characters."),
    "error.password_too_long": ("パスワードが長すぎます。", "The password is too long."),
    "error.password_needs_lower": ("英小文字を含めてください。", "Include a lower-case letter."),
    "error.password_needs_upper": ("英大文字を含めてください。", "Include an upper-case letter."),
    "error.password_needs_digit": ("数字を含めてください。", "Include a digit."),
    "error.password_needs_symbol": ("記号を含めてください。", "Include a symbol."),
    "error.password_common": (
        "推測されやすいパスワードは使用できません。",
        "This password is too easy to guess.",
    ),
    "error.password_contains_account": (
        "メールアドレスや組合員番号を含めないでください。",
        "Do not include your mail address or member number.",
    ),
    "error.member_no": ("半角数字12桁で入力してください。", "Enter the 12 half-width digits."),
    "error.birth_date": ("生年月日を正しく入力してください。", "Enter a valid birth date."),
    "error.mail": ("メールアドレスを正しく入力してください。", "Enter a valid mail address."),
    "error.code": ("6桁の数字を入力してください。", "Enter the 6 digits."),
    "error.not_found": ("見つかりません。", "Not found."),
    "error.page_not_found": (
        "お探しのページは見つかりませんでした。アドレスをご確認ください。",
        "The page you are looking for was not found. Please check the address.",
    ),
    "error.open_directly": (
        "このページは直接開くことはできません。お手数ですが、はじめから操作してください。",
        "This page cannot be opened directly. Please start again from the beginning.",
    ),
    "error.family_self": (
        "ご自身のアカウントを保護者として登録することはできません。",
        "You cannot name yourself as guardian.",
    ),
    "error.family_too_many": (
        "これ以上の保護者は登録できません。取り消してから申請してください。",
        "No more guardians can be added; revoke one first.",
    ),
    "error.family_invitations_exhausted": (
        "本日の保護者への招待は上限に達しました。明日以降にお試しください。",
        "You have sent as many family invitations as a day allows; try again tomorrow.",
    ),
    "error.family_forbidden": (
        "この組合員の履歴を見る許可がありません。",
        "You have no access to this member's history.",
    ),
    "error.suspended": (
        "アカウントは停止中です。再開は生協店舗の窓口にお申し出ください。",
        "The account is suspended. Please ask at the co-op counter to resume it.",
    ),
    "error.charge_suspended": (
        "アカウントが停止中のため、チャージできません。再開は生協店舗の窓口にお申し出ください。",
        "The account is suspended, so it cannot be charged. Please ask at the co-op counter "
        "to resume it.",
    ),
    "error.insufficient_funds": ("残高が足りません。", "The balance is not enough."),
    "error.over_limit": (
        "チャージ後の残高が上限（{limit}）を超えます。",
        "The balance after this would exceed the limit ({limit}).",
    ),
    "error.below_minimum": (
        "チャージ金額は{minimum}以上にしてください。",
        "The amount must be at least {minimum}.",
    ),
    "error.above_maximum": (
        "チャージ金額は{maximum}以下にしてください。",
        "The amount must be at most {maximum}.",
    ),
    "error.purse_not_allowed": ("このマネーは選択できません。", "This purse cannot be chosen."),
    "error.wallet_not_connected": (
        "電子マネーのアカウント登録が必要です。",
        "Please register your e-money account first.",
    ),
    "error.overloaded": (
        "ただいま混み合っています。少し待ってからお試しください。",
        "The service is busy. Please try again in a moment.",
    ),
    "error.unavailable": (
        "ただいま処理できません。少し待ってからお試しください。",
        "This cannot be done right now. Please try again shortly.",
    ),
    "error.outcome_unknown": (
        "処理が完了したか確認できませんでした。二重に処理されることはありません。"
        "履歴をご確認のうえ、必要ならもう一度お試しください。",
        "We could not confirm whether this was done; it is never done twice. "
        "Please check your history, then try again if needed.",
    ),
    # Guide and password (§0, §2) ----------------------------------------------------------
    "guide.title": (
        "「大学生協アプリ(公式)」利用するための準備",
        "Getting ready to use the co-op's services",
    ),
    "guide.lead": (
        "大学生協加入手続き完了後にご利用いただけます。以下の手順でパスワードを設定してください。",
        "You can start once your enrolment is complete. Set your password as follows.",
    ),
    "guide.password_heading": ("1. パスワードの設定", "1. Setting your password"),
    "guide.prepare": ("準備いただくもの", "What you need"),
    "guide.prepare_mail": (
        "大学生協加入手続き時に登録いただいたメールアドレス（現在、受信ができる状態のもの）",
        "The mail address you gave at enrolment (one you can receive mail at now)",
    ),
    "guide.prepare_member_no": (
        "『【重要】大学生協ご加入に伴う組合員番号のお知らせ』に記載されている「組合員番号」",
        "Your member number, from the mail announcing it after enrolment",
    ),
    "guide.password_rule": (
        "登録頂くパスワードは、英数大文字小文字と記号を混ぜて、8文字以上にしてください。",
        "Your password must mix lower and upper case letters, digits and symbols, "
        "8 characters or more.",
    ),
    "guide.keep_password": (
        "パスワードは紛失しないよう、お手元に記録しておいてください。",
        "Keep a record of your password so that you do not lose it.",
    ),
    "guide.change_heading": ("メールアドレスを変更したい方は", "To change your mail address"),
    "guide.change_form": (
        "登録時のメールアドレスを変更したい場合（メールアドレスが受信できる状態）は、"
        "メールアドレス変更フォームより変更をしてください。",
        "To change the address you enrolled with (while it still receives mail), "
        "use the mail address change form.",
    ),
    "guide.change_link": ("メールアドレス変更フォーム", "Mail address change form"),
    "guide.change_counter": (
        "登録時のメールアドレスが現在使えない場合、また電子マネー利用開始後の変更は、"
        "生協店舗の窓口でのお手続きとなります（完了まで数日かかることがあります）。",
        "If that address no longer works, or once you have started using e-money, the "
        "change is made at the co-op counter (it can take a few days).",
    ),
    "guide.set_password": ("パスワードの設定をする", "Set my password"),
    "guide.password_done": (
        "パスワードを設定しました。サインインできます。",
        "Your password is set. You can sign in now.",
    ),
    "guide.sign_in_portal": ("マイポータルにサインインする", "Sign in to My Portal"),
    "guide.log_in_mypage": ("組合員マイページにログインする", "Log in to the Member My Page"),
    "guide.links": ("各サービス", "Services"),
    "password.title": ("パスワードの設定", "Setting your password"),
    "password.send_code": ("確認コードを送信", "Send verification code"),
    "password.code_sent": (
        "受信トレイに確認コードが送信されました。以下の入力ボックスにコードをコピーしてください。",
        "A verification code was sent to your inbox. Copy it into the box below.",
    ),
    "password.code": ("確認コード", "Verification code"),
    "password.verify": ("コードの確認", "Verify code"),
    "password.resend": ("新しいコードを送信", "Send a new code"),
    "password.verified": (
        "メールアドレスが確認できました。次に進んでください。",
        "Your mail address is verified. Please continue.",
    ),
    "password.new": ("新しいパスワード", "New password"),
    "password.confirm": ("新しいパスワードを確認してください", "Confirm the new password"),
    "password.rule": (
        "※小文字・大文字・番号・記号を混ぜて、8文字以上にしてください。",
        "Mix lower case, upper case, digits and symbols; 8 characters or more.",
    ),
    # Mail change (§1) ----------------------------------------------------------------------
    "mail_change.title": ("メールアドレスの変更", "Changing your mail address"),
    "mail_change.step1": ("個人情報入力", "Your details"),
    "mail_change.step2": ("登録内容確認", "Check"),
    "mail_change.step3": ("パスコード確認", "Passcode"),
    "mail_change.step4": ("メールアドレス変更", "New address"),
    "mail_change.step5": ("パスコード確認", "Passcode"),
    "mail_change.step6": ("登録完了", "Done"),
    "mail_change.step_of": ("ステップ {step}/{steps}：", "Step {step} of {steps}: "),
    "mail_change.progress": ("手続きの進み具合", "Progress of the change"),
    "mail_change.intro": (
        "このページでは、大学生協組合員管理システムにご登録いただいているメールアドレスの変更を"
        "受け付けています。",
        "This page changes the mail address registered in the co-op's member system.",
    ),
    "mail_change.caution": (
        "すでに大学生協電子マネーをご利用の方は、このページでのメールアドレス変更はできません。",
        "If you already use the co-op's e-money, the address cannot be changed here.",
    ),
    "mail_change.prepare_current": (
        "現在登録いただいているメールアドレスが受信できる環境",
        "Access to the mail address registered now",
    ),
    "mail_change.prepare_new": (
        "変更後のメールアドレスが受信できる環境",
        "Access to the new mail address",
    ),
    "mail_change.prepare_member_no": (
        "生協ご加入時にメールでご案内した組合員番号",
        "The member number mailed to you at enrolment",
    ),
    "mail_change.unknown_no": (
        "組合員番号が不明の場合は、恐れ入りますが生協店舗にお問い合わせください。",
        "If you do not know your member number, please ask at a co-op store.",
    ),
    "mail_change.start": ("変更処理を開始する", "Start the change"),
    "mail_change.enter_details": (
        "生年月日と組合員番号をご入力ください。",
        "Enter your birth date and member number.",
    ),
    "mail_change.member_no": ("生協組合員番号", "Member number"),
    "mail_change.member_no_hint": ("半角数字で12桁でご入力ください。", "12 half-width digits."),
    "mail_change.member_no_where": (
        "※組合員番号は決済完了メールに記載されています",
        "Your member number is in the mail sent after enrolment.",
    ),
    "mail_change.birth_date": ("生年月日", "Birth date"),
    "mail_change.year": ("年", "Year"),
    "mail_change.month": ("月", "Month"),
    "mail_change.day": ("日", "Day"),
    "mail_change.confirm_input": ("入力内容を確認する", "Check what I entered"),
    "mail_change.check_lead": (
        "入力内容を確認いただき相違がなければ「メールアドレスを検索する」ボタンを押して下さい。",
        "Check what you entered; if it is right, press “Find my mail address”.",
    ),
    "mail_change.search": ("メールアドレスを検索する", "Find my mail address"),
    "mail_change.correct": ("入力内容を訂正する", "Correct what I entered"),
    "mail_change.found_lead": (
        "ご登録いただいている以下のメールアドレスにパスコードをメールで送信いたします。"
        "受信されたメールの指示に従って、パスコードの入力をお願いいたします。",
        "A passcode will be mailed to the registered address below. Follow the mail's "
        "instructions to enter it.",
    ),
    "mail_change.send_passcode": ("パスコードを送信する", "Send the passcode"),
    "mail_change.not_arriving": (
        "パスコードが届かない場合には@{domain}ドメインからの受信拒否が設定されていないかを"
        "確認の上、あらためて操作を行ってください。",
        "If the passcode does not arrive, check that mail from @{domain} is not blocked, "
        "then try again.",
    ),
    "mail_change.not_arriving_any": (
        "パスコードが届かない場合には、迷惑メールフォルダーと、大学生協からのメールの受信拒否が"
        "設定されていないかを確認の上、あらためて操作を行ってください。",
        "If the passcode does not arrive, check your spam folder and that mail from the "
        "co-op is not blocked, then try again.",
    ),
    "mail_change.sent": (
        "メールアドレスにパスコードを送信しました。パスコードが届かない場合は生協店舗に"
        "お申し出ください。",
        "The passcode was sent. If it does not arrive, please tell a co-op store.",
    ),
    "mail_change.passcode_lead": (
        "メールに書かれているパスコードを入力して「パスコードを確認する」をクリックしてください。",
        "Enter the passcode from the mail and press “Check the passcode”.",
    ),
    "mail_change.passcode": ("パスコード", "Passcode"),
    "mail_change.passcode_second": ("パスコード（2回目）", "Passcode (second)"),
    "mail_change.passcode_hint": ("半角数字6桁でご入力ください。", "6 half-width digits."),
    "mail_change.check_passcode": ("パスコードを確認する", "Check the passcode"),
    "mail_change.new_lead": (
        "変更するメールアドレスを入力してください。",
        "Enter the new mail address.",
    ),
    "mail_change.new_mail": ("変更後のメールアドレス", "New mail address"),
    "mail_change.new_confirm_lead": (
        "ご入力いただいた以下のメールアドレスが正しいことを確認して「パスコードを送信する」を"
        "クリックしてください。",
        "Check that the address below is right and press “Send the passcode”.",
    ),
    "mail_change.done": (
        "メールアドレスの変更が完了しました。新しいメールアドレスでサインインしてください。",
        "Your mail address is changed. Sign in with the new address from now on.",
    ),
    "mail_change.cancelled": (
        "メールアドレスの変更を中止しました。",
        "The change of mail address was cancelled.",
    ),
    "mail_change.no_flow": (
        "手続きが見つかりません。最初からやり直してください。",
        "No change is in progress. Please start again.",
    ),
    # Portal sign-in and home (§3) -----------------------------------------------------------
    "portal.notices": ("ご案内", "Notices"),
    "portal.welcome": (
        "こちらのサイトでは大学生活を過ごすあなたと大学生協を結ぶ情報を提供しています。"
        "すでに登録が完了している方は、画面右上のサインインから登録アドレスで認証してください。",
        "This site connects you and your co-op during your university life. If you have "
        "registered, sign in at the top right with your registered address.",
    ),
    "portal.prepare": (
        "サインインには、登録メールアドレス、パスワード、個人認証用電話番号（SMSまたは音声で"
        "6桁のコードをお伝えします）が必要です。",
        "To sign in you need your mail address, your password and the phone on record "
        "(a 6-digit code is sent by SMS or read out by a call).",
    ),
    "portal.sign_in_title": ("メールアドレスでサインインする", "Sign in with your mail address"),
    "portal.forgot": ("パスワードを忘れた場合", "Forgot your password?"),
    "portal.social": ("自分のソーシャルアカウントでサインイン", "Sign in with a social account"),
    "portal.social_warning": (
        "※ソーシャルアカウントでサインインを行わないでください。",
        "Please do not sign in with a social account.",
    ),
    "portal.mfa_title": ("多要素認証", "Multi-factor authentication"),
    "portal.mfa_lead": (
        "電話確認の通話の着信や、認証に必要なコードを記載したSMSの受け取りができるために、"
        "電話番号を入力してください。",
        "Enter your phone number to receive a call or an SMS with the code.",
    ),
    "portal.country": ("国番号", "Country code"),
    "portal.country_jp": ("日本 (+81)", "Japan (+81)"),
    "portal.phone": ("電話番号", "Phone number"),
    "portal.send_sms": ("コードの送信", "Send code"),
    "portal.call": ("電話する", "Call me"),
    "portal.country_note": (
        "※国番号は「日本 (+81)」を選択してください",
        "Choose “Japan (+81)” as the country code.",
    ),
    "portal.totp_lead": (
        "認証アプリをご利用の方は、アプリに表示される6桁のコードを入力してください。",
        "If you use an authenticator app, enter the 6-digit code it shows.",
    ),
    "portal.totp_code": ("認証アプリのコード", "Authenticator code"),
    "portal.code_lead": (
        "以下に確認コードを入力するか、新しいコードを送信してください。",
        "Enter the code below, or send a new one.",
    ),
    "portal.voice_note": (
        "※「電話する」を選択した方は電話のメッセージに従ってください。",
        "If you chose a call, follow the message of the call.",
    ),
    "portal.code": ("確認コード", "Code"),
    "portal.code_sent_sms": (
        "{phone} にSMSで確認コードを送信しました。",
        "A code was sent by SMS to {phone}.",
    ),
    "portal.code_sent_voice": (
        "{phone} にお電話しています。音声でお伝えするコードを入力してください。",
        "We are calling {phone}: enter the code the call reads out.",
    ),
    "portal.verify": ("コードの確認", "Verify code"),
    "portal.new_code": ("新しいコードの送信", "Send a new code"),
    "portal.home_title": ("ホーム", "Home"),
    "portal.profile": ("プロフィール", "Profile"),
    "portal.member_no": ("組合員番号", "Member number"),
    "portal.name": ("お名前", "Name"),
    "portal.kana": ("フリガナ", "Name in kana"),
    "portal.coop": ("ご加入の生協", "Your co-op"),
    "portal.phone_on_record": ("電話番号", "Phone"),
    "portal.cafeteria_history": ("食堂利用履歴", "Cafeteria history"),
    "portal.purchase_history": ("購入履歴", "Purchase history"),
    "portal.family": ("ファミリー申請", "Family access"),
    "portal.prev_month": ("前の月", "Previous month"),
    "portal.next_month": ("次の月", "Next month"),
    "portal.month_title": ("{year}年{month:02d}月", "{year}-{month:02d}"),
    "portal.weekdays": ("日,月,火,水,木,金,土", "Sun,Mon,Tue,Wed,Thu,Fri,Sat"),
    "portal.cafeteria_total": (
        "この月の食堂利用：{count}回　{total}",
        "Cafeteria this month: {count} visits, {total}",
    ),
    "portal.ic_card": ("学生証ICカード登録", "Student ID IC card"),
    "portal.ic_card_online": (
        "学生証ICカードは、このサイトから組合員証として登録できます（お一人様1枚）。",
        "You can register your student ID IC card here as your member card (one card).",
    ),
    "portal.ic_card_register": ("学生証ICカードを登録する", "Register my student ID card"),
    "portal.ic_card_counter": (
        "カードの再発行（変更）は生協店舗の窓口で承ります。紛失したときは、電子マネーの"
        "「アカウント停止」ですぐにお支払いを止められます。",
        "To replace the card (reissue), please come to the co-op counter. If you lose it, "
        "stop payments at once with “Suspend account” on the e-money pages.",
    ),
    # Family (§3, §7) ----------------------------------------------------------------------
    "family.lead": (
        "保護者の方が食堂利用履歴と購入履歴を見られるようにします。保護者の方のメールアドレスを"
        "入力してください。保護者の方にはご案内のメールが届き、メールアドレスの確認と"
        "パスワードの設定のあと、閲覧専用のページにサインインできます。",
        "Let a guardian see your cafeteria and purchase history. Enter the guardian's mail "
        "address: the guardian gets an invitation by mail, confirms the address, sets a "
        "password and signs in to a view-only page.",
    ),
    "guardian.title": ("保護者の方（ファミリー閲覧）", "For guardians (family access)"),
    "guardian.lead": (
        "組合員の方から閲覧の許可を受けた保護者の方は、ご案内のメールが届いたメールアドレスを"
        "入力してください。確認コードをお送りします。確認のあと、パスワードを設定してください"
        "（パスワードを忘れた場合も、こちらから設定し直せます）。",
        "If a member gave you access to their history, enter the address the invitation was "
        "sent to. We send you a verification code; then set your password (also if you "
        "forgot it).",
    ),
    "guardian.have_password": (
        "パスワードを設定済みの方はこちらからサインイン",
        "Already set a password? Sign in here",
    ),
    "guardian.password_done": (
        "パスワードを設定しました。サインインしてください。",
        "Your password is set. Please sign in.",
    ),
    "guardian.sign_in": ("保護者の方のサインイン", "Guardian sign-in"),
    "guardian.home": ("ファミリー閲覧", "Family view"),
    "family.guardian_mail": ("保護者のメールアドレス", "Guardian's mail address"),
    "family.apply": ("申請する", "Apply"),
    "family.granted": ("閲覧を許可している保護者", "Guardians who can see your history"),
    "family.revoke": ("取り消す", "Revoke"),
    "family.revoke_for": ("{mail} の許可を取り消す", "Revoke access for {mail}"),
    "family.done": ("保護者の方に閲覧を許可しました。", "The guardian can now see your history."),
    "family.revoked": ("閲覧の許可を取り消しました。", "The access was revoked."),
    "family.members": ("ファミリー（閲覧できる組合員）", "Family members you can see"),
    "family.none_for_guardian": (
        "閲覧を許可されている組合員はいません。",
        "No member has given you access to their history.",
    ),
    "family.viewing": ("{name} さんの履歴", "History of {name}"),
    "family.self": (
        "ご自身のアカウントを保護者として登録することはできません。",
        "You cannot name yourself as guardian.",
    ),
    # My page (§4) -------------------------------------------------------------------------
    "mypage.top_lead": (
        "大学生協電子マネーの残高確認・チャージ・マネー移動は組合員マイページから行えます。",
        "Check your e-money, charge it and move money between purses from your My Page.",
    ),
    "mypage.login": ("ログイン", "Log in"),
    "mypage.login_note": ("※「ログイン」は一度だけ押してください。", "Press “Log in” once."),
    "mypage.sign_in_title": ("サインイン", "Sign in"),
    "mypage.confirm_needed": (
        "確認が必要です。[送信] ボタンをクリックしてください。",
        "Confirmation is needed. Press the send button.",
    ),
    "mypage.send_code": ("確認コードを送信", "Send verification code"),
    "mypage.confirm_title": ("ログインの確認", "Confirm your login"),
    "mypage.code_to": ("確認コードの送信先", "Where the code goes"),
    "mypage.code_sent": (
        "確認コードが受信トレイに送信されました。次の入力ボックスにコピーしてください。",
        "A verification code was sent to your inbox. Copy it into the box below.",
    ),
    "mypage.home_title": ("マイページ", "My Page"),
    "mypage.register_wallet": (
        "大学生協電子マネー アカウント登録",
        "Register your co-op e-money account",
    ),
    "mypage.register_lead": (
        "電子マネーのご利用には、電子マネーのアカウント登録と、マイページからのアクセスの許可が"
        "必要です。",
        "To use e-money, register your e-money account and allow the My Page to reach it.",
    ),
    "mypage.open_wallet": ("電子マネーHOMEへ", "Open e-money HOME"),
    # Wallet login and consent (§5) -----------------------------------------------------------
    "wallet.login_title": ("大学生協電子マネーにログイン", "Log in to Co-op E-money"),
    "wallet.login_lead": (
        "大学生協電子マネーにログイン、または新規登録します。携帯電話番号またはメールアドレスを"
        "入力してください。",
        "Log in to the co-op's e-money, or sign up. Enter your mobile number or mail address.",
    ),
    "wallet.code_title": ("確認コードの入力", "Enter the code"),
    "wallet.consent_title": ("アクセスの許可", "Allow access"),
    "wallet.identifier": ("携帯電話番号またはメールアドレス", "Mobile number or mail address"),
    "wallet.login_button": ("ログイン・新規登録", "Log in / Sign up"),
    "wallet.recommend": (
        "※メールアドレスで登録する場合、マイポータルでサインインしたメールアドレスでの登録を"
        "おすすめします。",
        "If you use a mail address, we recommend the one you sign in to the portal with.",
    ),
    "wallet.code_sent": ("{to} 宛に確認コードをお送りしました。", "A code was sent to {to}."),
    "wallet.code": ("確認コード", "Code"),
    "wallet.login": ("ログイン", "Log in"),
    "wallet.consent_lead": (
        "{client}が大学生協電子マネーへのアクセスを求めています。",
        "{client} asks for access to your co-op e-money.",
    ),
    "wallet.allow": ("アクセスを許可する", "Allow access"),
    "wallet.denied": (
        "アクセスを許可しませんでした。電子マネーのご利用にはアカウント登録が必要です。",
        "Access was not allowed. E-money needs the account registration.",
    ),
    "wallet.scope.wallet:read": (
        "大学生協電子マネーの残高・取引履歴の取得",
        "Read your e-money balances and history",
    ),
    "wallet.scope.wallet:pay": ("大学生協電子マネーでの支払い", "Pay with your e-money"),
    "wallet.registered": (
        "電子マネーのアカウント登録が完了しました。",
        "Your e-money account is registered.",
    ),
    # E-money pages (§5, §6) -----------------------------------------------------------------
    "emoney.menu.home": ("HOME", "HOME"),
    "emoney.menu.history": ("マネー/ポイント利用履歴", "Money and point history"),
    "emoney.menu.charge": ("チャージ › 自分チャージ", "Charge › for myself"),
    "emoney.menu.move": ("マネー移動", "Move money"),
    "emoney.menu.notices": ("お知らせ", "Notices"),
    "emoney.menu.suspend": ("アカウント停止", "Suspend account"),
    "emoney.balances": ("残高", "Balances"),
    "emoney.total": ("マネー合計", "Money in total"),
    "emoney.meal_today": ("本日のミール残り利用可能額", "Meal plan left to spend today"),
    "emoney.meal_plan": ("ミールプラン", "Meal plan"),
    "emoney.status_suspended": (
        "このアカウントは停止中です。再開は生協店舗の窓口にお申し出ください。",
        "This account is suspended. Ask at the co-op counter to resume it.",
    ),
    "emoney.pending": (
        "コンビニチャージ（お支払い待ち・反映待ち・返金）",
        "Convenience-store charges (awaiting payment, being credited, refunded)",
    ),
    "emoney.pay_by": ("お支払い期限", "Pay by"),
    "emoney.show_numbers": ("お支払い番号を見る", "See the payment numbers"),
    "purse.meal": ("ミール", "Meal plan"),
    "purse.cafeteria": ("学食マネー", "Cafeteria money"),
    "purse.textbook": ("教科書マネー", "Textbook money"),
    "purse.base": ("ベースマネー", "Base money"),
    "purse.points": ("ポイント", "Points"),
    "history.month": ("表示する月", "Month"),
    "history.all": ("すべて", "All"),
    "history.filter": ("表示", "Show"),
    "history.older": ("さらに古い履歴", "Older"),
    "history.newest": ("最新に戻る", "Newest"),
    "history.kind": ("内容", "What"),
    "history.change": ("増減", "Change"),
    "kind.open": ("加入時入金", "Enrolment deposit"),
    "kind.pay": ("お支払い", "Payment"),
    "kind.offline_pay": ("お支払い", "Payment"),
    "kind.void": ("取消", "Cancelled payment"),
    "kind.refund": ("返金", "Refund"),
    "kind.charge": ("チャージ", "Charge"),
    "kind.move": ("マネー移動", "Move"),
    "move.lead": (
        "ベースマネーから学食マネー・教科書マネーへ残高を移動します。",
        "Move money from base money to cafeteria or textbook money.",
    ),
    "move.from": ("移動元（{purse}）", "From {purse}"),
    "move.to": ("移動先", "Move to"),
    "move.amount": ("移動する金額（円）", "Amount (yen)"),
    "move.submit": ("移動する", "Move"),
    "move.done": ("{amount}を{purse}へ移動しました。", "{amount} moved to {purse}."),
    "notices.empty": ("お知らせはありません。", "There are no notices."),
    "suspend.lead": (
        "アカウントを停止すると、IC組合員証での電子マネーのお支払いができなくなります。"
        "紛失時などにご利用ください。",
        "Suspending the account stops payments with your IC member card, e.g. when it is lost.",
    ),
    "suspend.counter": (
        "※再開は店舗へ連絡が必要です。生協店舗の窓口にお申し出ください。",
        "Resuming needs the co-op: please ask at the co-op counter.",
    ),
    "suspend.submit": ("アカウントを停止する", "Suspend the account"),
    "suspend.confirm_title": ("アカウントを停止しますか？", "Suspend the account?"),
    "suspend.confirm_lead": (
        "停止すると、IC組合員証でのお支払い、マネー移動、チャージができなくなります。"
        "再開には生協店舗の窓口でのお手続きが必要です。",
        "Once it is suspended, the account cannot pay with the IC member card, move money "
        "or be charged. Resuming it needs a visit to the co-op counter.",
    ),
    "suspend.confirm": ("停止する", "Suspend"),
    "suspend.cancel": ("やめる", "Cancel"),
    "suspend.konbini_note": (
        "停止前に発行したコンビニのお支払い番号で支払われた分は、停止中もチャージされ、"
        "再開後にご利用いただけます。",
        "A payment at a convenience store with numbers issued before the suspension is "
        "still credited, and can be spent once the account is resumed.",
    ),
    "suspend.done": (
        "アカウントを停止しました。再開は生協店舗の窓口でお手続きください。",
        "The account is suspended. It is resumed at the co-op counter.",
    ),
    # Charging (§6) ----------------------------------------------------------------------
    "charge.title": ("自分チャージ", "Charge for myself"),
    "charge.amount": ("チャージ金額", "Amount"),
    "charge.reset": ("リセット（0円にする）", "Reset (to ¥0)"),
    "charge.balance_now": ("残高 {amount}", "Balance {amount}"),
    "charge.purse": ("チャージするマネー", "Purse to charge"),
    "charge.store": ("お支払い先", "Where you pay"),
    "charge.limits": (
        "1回のチャージは{minimum}〜{maximum}です。",
        "One charge is between {minimum} and {maximum}.",
    ),
    "charge.choose_purse": ("チャージするマネーを選択してください", "Choose the purse to charge"),
    "charge.card": ("クレジットカード", "Credit card"),
    "charge.konbini": ("コンビニ", "Convenience store"),
    "charge.konbini_note": (
        "コンビニ支払いは「お支払い完了後」のチャージとなりますのでご了承ください。",
        "A convenience-store charge is credited only after you have paid at the store.",
    ),
    "charge.card_title": ("クレジットカード決済", "Pay by credit card"),
    "charge.card_lead": (
        "下記項目にクレジットカード情報をご入力下さい。入力後、画面下部の「購入」ボタンを"
        "クリックして下さい。",
        "Enter your card below, then press “Buy” at the bottom.",
    ),
    "charge.card_number": ("カード番号", "Card number"),
    "charge.card_number_hint": (
        "ハイフンは間に入れず、番号のみを入力してください。",
        "Digits only, no hyphens.",
    ),
    "charge.expiry": ("カード有効期限", "Expiry"),
    "charge.expiry_month": ("月", "month"),
    "charge.expiry_year": ("年", "year"),
    "charge.cvc": ("セキュリティコード", "Security code"),
    "charge.cvc_hint": (
        "※カード裏面の署名欄（AMEXは除く）に記載されている末尾3桁〜4桁の数字をご記入下さい。"
        "※AMEXは表面にあります。（例：1234）",
        "The last 3 digits on the back of the card; AMEX: the 4 digits on the front.",
    ),
    "charge.birthday": ("誕生日の月日", "Birthday (month and day)"),
    "charge.birthday_hint": (
        "※ご本人の誕生日の月日を半角4桁でご記入下さい（例：0430）。",
        "Month and day of your birthday, 4 digits (e.g. 0430).",
    ),
    "charge.buy_note": (
        "以上の内容で間違いなければ、下記「購入」ボタンをクリックして下さい。",
        "If everything is right, press “Buy”.",
    ),
    "charge.buy": ("購入", "Buy"),
    "charge.done": ("チャージが完了しました。", "The charge is complete."),
    "charge.done_home": ("※HOME画面で残高確認ができます。", "See the new balance on HOME."),
    "charge.card_used": ("お支払いカード", "Card"),
    "charge.konbini_title": ("コンビニ決済", "Pay at a convenience store"),
    "charge.family_name": ("姓", "Family name"),
    "charge.given_name": ("名", "Given name"),
    "charge.name": ("お名前", "Name"),
    "charge.kana": ("お名前カナ", "Name in katakana"),
    "charge.kana_family": ("セイ", "Family (kana)"),
    "charge.kana_given": ("メイ", "Given (kana)"),
    "charge.kana_hint": (
        "全角カナ文字入力（例：ヤマダ タロウ）",
        "Full-width katakana (e.g. ヤマダ タロウ)",
    ),
    "charge.phone": ("電話番号", "Phone number"),
    "charge.phone_part1": ("電話番号（最初の部分）", "Phone number, first part"),
    "charge.phone_part2": ("電話番号（真ん中の部分）", "Phone number, middle part"),
    "charge.phone_part3": ("電話番号（最後の部分）", "Phone number, last part"),
    "charge.confirm": ("確定する", "Confirm"),
    "charge.choose_store": ("コンビニでのお支払い", "Where you will pay"),
    "charge.issued": (
        "お支払い番号を発行しました。期限までにコンビニでお支払いください。",
        "Your payment numbers are issued. Please pay at the store before the deadline.",
    ),
    "charge.payment_number": ("お支払い番号", "Payment number"),
    "charge.confirmation_number": ("確認番号", "Confirmation number"),
    "charge.konbini_mailed": (
        "お支払い番号をご入力のメールアドレスにもお送りしました。",
        "The numbers were also mailed to the address you entered.",
    ),
    "charge.status": ("状態", "Status"),
    "charge.status.pending": ("お支払い待ち", "Awaiting payment"),
    "charge.status.paid": ("お支払い済み（チャージ反映待ち）", "Paid; being credited"),
    "charge.status.credited": ("チャージ済み", "Charged"),
    "charge.status.refunded": ("返金済み", "Refunded"),
    "charge.status.expired": ("期限切れ（取消）", "Expired (cancelled)"),
    "charge.status.cancelled": ("取消", "Cancelled"),
    "charge.status.declined": ("決済不可", "Declined"),
    "charge.status.authorizing": ("処理中", "In progress"),
    "error.card_number": ("カード番号を正しく入力してください。", "The card number is not valid."),
    "error.card_expiry": ("有効期限を正しく入力してください。", "The expiry is not valid."),
    "error.card_expired": ("カードの有効期限が切れています。", "The card has expired."),
    "error.card_cvc": (
        "セキュリティコードを正しく入力してください。",
        "The security code is not valid.",
    ),
    "error.card_birthday": (
        "誕生日の月日を半角4桁で入力してください。",
        "Enter the birthday as 4 digits (MMDD).",
    ),
    "error.card_declined": (
        "このカードはご利用いただけませんでした。カード会社にお問い合わせください。",
        "The card was declined. Please contact the card issuer.",
    ),
    "error.card_insufficient_funds": (
        "ご利用可能額が不足しているため、決済できませんでした。",
        "The card's available credit is not enough.",
    ),
    "error.acquirer_unavailable": (
        "カード会社と通信できませんでした。時間をおいてお試しください。",
        "The card network could not be reached. Please try again later.",
    ),
    "error.kana": ("全角カタカナで入力してください。", "Use full-width katakana."),
    "error.phone_parts": ("電話番号を正しく入力してください。", "Enter a valid phone number."),
    "error.store": ("コンビニを選択してください。", "Choose a store."),
    "error.amount": ("チャージ金額を設定してください。", "Set the amount."),
    "error.pending_max": (
        "お支払い待ちのコンビニチャージが多すぎます。お支払い後にお申し込みください。",
        "Too many convenience-store charges are awaiting payment.",
    ),
    "konbini.lawson": ("ローソン", "Lawson"),
    "konbini.familymart": ("ファミリーマート", "FamilyMart"),
    "konbini.ministop": ("ミニストップ", "Ministop"),
    "konbini.seicomart": ("セイコーマート", "Seicomart"),
    "konbini.dailyyamazaki": ("デイリーヤマザキ", "Daily Yamazaki"),
    "konbini.seveneleven": ("セブン-イレブン", "7-Eleven"),
    "konbini.steps.lawson": (
        "店内のLoppiで「各種番号をお持ちの方」を選び、お支払い番号と確認番号を入力し、"
        "発券された申込券を30分以内にレジへお持ちください。",
        "At the Loppi terminal choose “I have a number”, enter the payment and confirmation "
        "numbers, and take the slip to the register within 30 minutes.",
    ),
    "konbini.steps.familymart": (
        "店内のマルチコピー機で「代金支払い」を選び、お支払い番号と確認番号を入力し、"
        "申込券をレジへお持ちください。",
        "At the multi-copy machine choose “Payments”, enter both numbers and take the slip "
        "to the register.",
    ),
    "konbini.steps.ministop": (
        "店内のLoppiで「各種番号をお持ちの方」を選び、お支払い番号と確認番号を入力し、"
        "申込券をレジへお持ちください。",
        "At the Loppi terminal enter both numbers and take the slip to the register.",
    ),
    "konbini.steps.seicomart": (
        "レジで「インターネット支払い」とお伝えいただき、お支払い番号をお伝えください。",
        "Tell the cashier “internet payment” and give the payment number.",
    ),
    "konbini.steps.dailyyamazaki": (
        "レジで「オンライン決済」とお伝えいただき、お支払い番号をお伝えください。",
        "Tell the cashier “online payment” and give the payment number.",
    ),
    "konbini.steps.seveneleven": (
        "レジで「インターネット支払い」とお伝えいただき、お支払い番号（払込票番号）を"
        "お伝えください。",
        "Tell the cashier “internet payment” and give the payment (slip) number.",
    ),
    "emoney.charge_paid": (
        "お支払いを確認しました。チャージの反映をお待ちください。",
        "Payment received; the charge is being credited.",
    ),
    "emoney.charge_refunded": (
        "返金済み：チャージできなかったため、生協から返金しました。",
        "Refunded: the charge could not be credited, so the co-op paid it back.",
    ),
    "sim.title": ("コンビニ店頭（開発用シミュレーター）", "Store counter (development simulator)"),
    "sim.lead": (
        "お支払い番号を入力すると、店舗ネットワークが署名付きの入金通知を送ります。",
        "Enter a payment number: the store network sends a signed payment notice.",
    ),
    "sim.pay": ("店頭で支払う", "Pay at the store"),
    "sim.result": (
        "店舗ネットワークの応答：{status}",
        "The node answered the store network: {status}",
    ),
    # The home's desk (§3 step 5): inquiries, documents, events, IC card -------------------
    "desk.empty": ("表示するレコードはありません。", "No records to display."),
    "desk.inquiries": ("お問合せ履歴", "Inquiries"),
    "desk.inquiry_new": ("お問合せ履歴の新規登録", "New inquiry"),
    "desk.inquiry_no": ("お問合せNo", "Inquiry No."),
    "desk.inquiry_coop": ("お問合せ先会員生協", "Co-op asked"),
    "desk.inquiry_date": ("お問合せ日", "Date"),
    "desk.answer_by": ("ご希望回答方法", "Preferred answer"),
    "desk.inquiry_status": ("お問合せ状態", "Status"),
    "desk.answer_by.mail": ("メール", "Mail"),
    "desk.answer_by.phone": ("電話", "Phone"),
    "desk.status.received": ("受付済", "Received"),
    "desk.status.answered": ("回答済", "Answered"),
    "desk.category": ("お問合せ種別", "Category"),
    "desk.category.membership": ("組合員・出資金", "Membership and shares"),
    "desk.category.emoney": ("電子マネー・ミールプラン", "E-money and meal plan"),
    "desk.category.kyosai": ("共済・保険", "Mutual aid and insurance"),
    "desk.category.shop": ("店舗・教科書", "Shops and textbooks"),
    "desk.category.other": ("その他", "Other"),
    "desk.subject": ("件名", "Subject"),
    "desk.body": ("お問合せ内容", "Your question"),
    "desk.body_hint": ("{min}文字以上{max}文字以内", "{min} to {max} characters"),
    "desk.subject_hint": ("{max}文字以内", "At most {max} characters"),
    "desk.send": ("登録する", "Send"),
    "desk.answer": ("回答", "Answer"),
    "desk.inquiry_done": ("お問合せを受け付けました。", "Your inquiry was received."),
    "desk.documents": ("資料請求", "Document requests"),
    "desk.document_new": ("資料請求の新規登録", "Request a document"),
    "desk.documents_lead": (
        "あなたが申請した資料請求の一覧",
        "The documents you requested",
    ),
    "desk.document_no": ("資料請求No", "Request No."),
    "desk.applicant": ("申込者", "Applicant"),
    "desk.document": ("対象資料", "Document"),
    "desk.requested_date": ("申込日", "Requested"),
    "desk.sent_date": ("発送日", "Sent"),
    "desk.provided_by": ("提供方法", "Provided by"),
    "desk.provided_by.post": ("郵送", "Post"),
    "desk.provided_by.download": ("ダウンロード", "Download"),
    "desk.url": ("URL", "URL"),
    "desk.not_yet": ("未発送", "Not yet"),
    "desk.document_done": ("資料請求を受け付けました。", "Your request was received."),
    "desk.events": ("イベント申込", "Event applications"),
    "desk.event_new": ("イベント参加申込の新規登録", "Apply to an event"),
    "desk.events_lead": ("あなたが登録したイベント申請の一覧", "Your event applications"),
    "desk.open_events": ("申込受付中のイベント", "Events open for application"),
    "desk.application_no": ("イベント申込No", "Application No."),
    "desk.event": ("イベント", "Event"),
    "desk.event_date": ("開催日", "Date"),
    "desk.place": ("会場", "Place"),
    "desk.seats": ("残り{left}席（定員{capacity}）", "{left} of {capacity} seats left"),
    "desk.seats_title": ("空き状況", "Seats"),
    "desk.apply_to": ("{title}に申し込む", "Apply to {title}"),
    "desk.apply_until": ("申込締切", "Apply by"),
    "desk.applied_date": ("イベント申込日", "Applied"),
    "desk.application_status": ("イベント申込状態", "Status"),
    "desk.application_cancel": ("イベント申込取消", "Cancel"),
    "desk.attendance": ("イベント参加結果", "Attendance"),
    "desk.application.applied": ("申込済", "Applied"),
    "desk.application.cancelled": ("取消済", "Cancelled"),
    "desk.attendance.unknown": ("未確定", "Not recorded"),
    "desk.attendance.attended": ("参加", "Attended"),
    "desk.attendance.absent": ("不参加", "Absent"),
    "desk.apply": ("申し込む", "Apply"),
    "desk.cancel": ("取り消す", "Cancel"),
    "desk.event_applied": ("イベントに申し込みました。", "You applied to the event."),
    "desk.event_cancelled": ("イベントの申込を取り消しました。", "Your application was cancelled."),
    "desk.ic_card_lead": (
        "学生証のICカードを組合員証として登録すると、生協の店舗や食堂でお支払いに使えます。"
        "カードのIDm（16桁の英数字、カードリーダーで表示されます）を入力してください。",
        "Register your student ID card as your member card to pay at the co-op's shops and "
        "cafeterias. Enter the card's IDm (16 hex digits, shown by a card reader).",
    ),
    "desk.idm": ("カードのIDm", "Card IDm"),
    "desk.idm_hint": ("例：0123456789abcdef", "e.g. 0123456789abcdef"),
    "desk.register": ("登録する", "Register"),
    "desk.card_active": (
        "登録済みのカード：…{tail}（利用中）",
        "Registered card: …{tail} (active)",
    ),
    "desk.card_none": ("登録済みのカードはありません。", "No card is registered."),
    "desk.card_done": ("カードを登録しました。", "Your card is registered."),
    "desk.card_reissue": (
        "カードを新しくする（再発行）ときは、前のカードをお持ちのうえ生協店舗の窓口へお越しください。",
        "To replace your card (reissue), please come to the co-op counter.",
    ),
    "error.idm_format": (
        "IDmは16桁の英数字（0〜9、a〜f）で入力してください。",
        "An IDm is 16 hex digits (0-9, a-f).",
    ),
    "error.card_active": (
        "すでに利用中のカードがあります。カードの変更（再発行）は生協店舗の窓口で承ります。",
        "You already have an active card. To change it (reissue), please come to the co-op "
        "counter.",
    ),
    "error.card_taken": (
        "このカードは登録できません。生協店舗の窓口へお問合せください。",
        "This card cannot be registered. Please ask at the co-op counter.",
    ),
    "error.card_no_wallet": (
        "電子マネーのお手続きが済んでいないため、カードを登録できません。",
        "Your e-money account is not open, so a card cannot be registered yet.",
    ),
    "error.cards_unavailable": (
        "ただいまカードを登録できません。しばらくしてからお試しください。",
        "Cards cannot be registered just now. Please try again later.",
    ),
    "error.desk_daily_limit": (
        "本日のお申し込みの上限に達しました。明日以降にお試しください。",
        "You reached today's limit. Please try again tomorrow.",
    ),
    "error.desk_length": (
        "{min}文字以上{max}文字以内で入力してください。",
        "Enter {min} to {max} characters.",
    ),
    "error.desk_choice": ("選択してください。", "Please choose one."),
    "error.document_unknown": (
        "その資料はお申し込みいただけません。",
        "That document is not offered.",
    ),
    "error.event_unknown": ("そのイベントはありません。", "There is no such event."),
    "error.event_full": ("定員に達したため、お申し込みいただけません。", "The event is full."),
    "error.event_closed": (
        "申込期間を過ぎたため、お申し込み・お取り消しいただけません。",
        "The application period is over; you can no longer apply or cancel.",
    ),
}


def message(lang: Lang, key: str, **values: object) -> str:
    """The text of `key` in `lang`, with `{name}` fields filled from `values`."""
    pair = _MESSAGES.get(key)
    if pair is None:
        raise KeyError(f"no message {key!r} in the portal catalogue")
    text = pair[0] if lang is Lang.JA else pair[1]
    return text.format(**values) if values else text


def has_message(key: str) -> bool:
    return key in _MESSAGES


def error_key(reason: str) -> str:
    """The catalogue key of an engine refusal reason; a generic one when it has none."""
    key = f"error.{reason}"
    return key if key in _MESSAGES else "error.generic"
